//! Docker nodes (issue 23) through a real Docker engine: Debian's
//! `dockerd`, started once by these tests with `--iptables=false
//! --bridge=none --ip-forward=false` and its own directories and socket
//! (stopped when the test process ends), and an image imported from a
//! busybox-static root filesystem (no registry). Each server runs in a
//! network namespace of the test's, so the host ends of the containers'
//! veths live there and go with it.

use crate::tap::Netns;
use crate::util::{Console, Server, temp_dir, wait_for};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The test image: busybox-static's applets, `/bin/sh` its command.
pub const IMAGE: &str = "nanolab-busybox:test";

/// The tests' own Docker engine.
pub struct Engine {
    /// Its socket.
    pub socket: PathBuf,
}

/// The Docker CLI of Debian's docker.io (another one may be first on PATH).
fn cli() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

impl Engine {
    /// `docker ARGS` against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new(cli())
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .output()
            .expect("the docker CLI (docker.io) is installed")
    }

    /// The ids of the containers labelled with projects directory `dir`.
    pub fn containers_of(&self, dir: &Path) -> Vec<String> {
        let label = format!("label=org.nanolab.projects-dir={}", dir.display());
        let out = self.docker(&["ps", "-aq", "--no-trunc", "--filter", &label]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Start the engine once for the whole test process, from a thread that
/// lives as long as the process (the engine gets SIGTERM when its parent
/// thread ends), and import the test image.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let tmp = std::env::temp_dir();
        // Earlier runs' engines are gone (SIGTERM when their process
        // ended): their directories go too.
        for old in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let path = old.path();
            let name = old.file_name().to_string_lossy().into_owned();
            let pid = std::fs::read_to_string(path.join("dockerd.pid")).unwrap_or_default();
            let alive = !pid.trim().is_empty() && Path::new("/proc").join(pid.trim()).exists();
            if name.starts_with("nanolab-dockerd-") && !alive {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
        let dir = tmp.join(format!("nanolab-dockerd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("docker.sock");
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let d = dir.clone();
        std::thread::spawn(move || {
            let child = Command::new("setpriv")
                .args(["--pdeathsig", "TERM", "dockerd"])
                .args(["--iptables=false", "--bridge=none", "--ip-forward=false"])
                .arg("--data-root")
                .arg(d.join("root"))
                .arg("--exec-root")
                .arg(d.join("exec"))
                .arg("--pidfile")
                .arg(d.join("dockerd.pid"))
                .arg("-H")
                .arg(format!("unix://{}", d.join("docker.sock").display()))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn();
            let _ = tx.send(child.map(|c| c.id()));
            loop {
                std::thread::park();
            }
        });
        let started = rx.recv().unwrap();
        started.unwrap_or_else(|e| panic!("dockerd (Debian's docker.io) is installed: {e}"));
        let e = Engine { socket };
        let up = wait_for(60, || e.docker(&["version"]).status.success());
        let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
        assert!(up, "dockerd did not answer: {log}");
        import_busybox(&e, &dir);
        e
    })
}

/// `docker import` a root filesystem of busybox-static and its applets.
fn import_busybox(e: &Engine, dir: &Path) {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static is installed (/bin/busybox)");
    for applet in [
        "sh", "ip", "ping", "ls", "cat", "echo", "sleep", "ifconfig", "hostname", "date",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let tar = dir.join("rootfs.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let tar = tar.display().to_string();
    let out = e.docker(&["import", "-c", r#"CMD ["/bin/sh"]"#, &tar, IMAGE]);
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server of the engine's, in the calling thread's namespace.
pub fn server(extra: &[&str]) -> Server {
    let socket = engine().socket.display().to_string();
    let mut args = vec!["--docker-socket", socket.as_str()];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// The host ends of containers' veths in the calling thread's namespace.
/// (`ip`, not `/sys`: sysfs shows the namespace of whoever mounted it.)
fn veths() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("iproute2 is installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n.starts_with("nl") && n.len() == 13)
        .collect()
}

fn create(s: &Server, base: &str, body: Value) -> Value {
    let r = s.post(base, &body.to_string());
    assert_eq!(r.status, 201, "{}\n{}", r.text, s.log());
    r.json
}

fn udp(s: &Server, p: &str) -> u64 {
    let r = s.post(&format!("/v2/compute/projects/{p}/ports/udp"), "{}");
    r.json["udp_port"].as_u64().unwrap()
}

fn link(s: &Server, node: &str, adapter: u32, (lport, rport): (u64, u64)) {
    let body = json!({"type": "nio_udp", "lport": lport, "rhost": "127.0.0.1", "rport": rport,
                      "filters": {}, "suspend": false});
    let r = s.post(
        &format!("{node}/adapters/{adapter}/ports/0/nio"),
        &body.to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text);
}

#[test]
fn a_container_node_lives_its_whole_life_on_v2_and_v3_and_leaves_nothing() {
    let e = engine();
    let ns = Netns::new("dk1");
    ns.within(move || {
        let s = server(&[]);
        let p = s.post(
            "/v2/compute/projects",
            &json!({"name": "dk", "project_id": uuid::Uuid::new_v4().to_string()}).to_string(),
        );
        let p = p.json["project_id"].as_str().unwrap().to_string();

        let r = s.get("/v2/compute/docker/images");
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            r.json
                .as_array()
                .unwrap()
                .contains(&json!({"image": IMAGE})),
            "{}",
            r.text
        );
        assert_eq!(s.get("/v3/compute/docker/images").json, r.json);

        // 2.2: what a template sends; unknown keys are refused.
        let base = format!("/v2/compute/projects/{p}/docker/nodes");
        s.post(
            &base,
            &json!({"name": "c0", "image": IMAGE, "bogus": 1}).to_string(),
        )
        .assert_error(400, "bogus");
        let n = create(
            &s,
            &base,
            json!({"name": "c1", "image": IMAGE, "adapters": 2, "console_type": "telnet",
                   "console_http_port": 80, "console_http_path": "/",
                   "console_resolution": "1024x768", "extra_volumes": [],
                   "environment": "GREETING=hello %vm-name%"}),
        );
        assert_eq!(n["status"], "stopped");
        assert_eq!(n["adapters"], 2);
        let cid = n["container_id"].as_str().unwrap().to_string();
        assert!(cid.len() == 64, "{n}");
        assert_eq!(e.containers_of(&s.dir.join("projects")), vec![cid.clone()]);
        let id = n["node_id"].as_str().unwrap().to_string();
        let mac = n["mac_address"].as_str().unwrap().to_string();
        let node = format!("{base}/{id}");
        let console = n["console"].as_u64().unwrap() as u16;

        let r = s.post(&format!("{node}/start"), "");
        assert_eq!(r.status, 204, "{}\n{}", r.text, s.log());
        assert_eq!(s.get(&node).json["status"], "started");
        assert_eq!(veths().len(), 2, "{:?}", veths());
        let mut a = Console::open(console);
        let mut b = Console::open(console);
        assert!(a.expect("/ # ", 10), "no shell prompt: {}", a.text());
        assert!(b.expect("/ # ", 10), "{}", b.text());
        a.send("echo $GREETING; cat /sys/class/net/eth1/address\r\n");
        assert!(a.expect("hello c1", 10), "{}", a.text());
        let mac1 = format!("{}01", &mac[..mac.len() - 2]);
        assert!(a.expect(&mac1, 10), "eth1 is {mac1}: {}", a.text());
        assert!(
            b.expect("hello c1", 10),
            "the second client sees it: {}",
            b.text()
        );
        // What a lab needs of the kernel it has; what acts on the host, not.
        a.send("ip link set eth0 mtu 1400 && echo mtu=o''k\r\n");
        assert!(a.expect("mtu=ok", 10), "NET_ADMIN: {}", a.text());
        // The kernel's own word: NET_ADMIN (12) kept, SYS_TIME (25) and
        // SYS_MODULE (16) not.
        let from = a.seen.len();
        a.send("grep CapEff /proc/self/status\r\n");
        assert!(a.expect_after(from, "CapEff:\t", 10), "{}", a.text());
        assert!(a.expect_after(from, "\n/ # ", 10), "{}", a.text());
        let text = String::from_utf8_lossy(&a.seen[from..]).into_owned();
        let hex = text
            .split("CapEff:\t")
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .next();
        let caps = u64::from_str_radix(hex.unwrap_or(""), 16).unwrap_or_else(|_| panic!("{text}"));
        assert!(caps & (1 << 12) != 0, "NET_ADMIN: {caps:x}");
        assert!(caps & (1 << 25) == 0 && caps & (1 << 16) == 0, "{caps:x}");

        // 2.2's auxiliary console: a second shell, on a port of its own.
        let aux = n["aux"].as_u64().expect("2.2 gives an aux console") as u16;
        assert_ne!(aux, console);
        let mut x = Console::open(aux);
        x.send("\r\necho aux-$((6*7))\r\n");
        assert!(x.expect("aux-42", 10), "no second shell: {}", x.text());
        assert!(
            !a.text().contains("aux-42"),
            "the console's clients see none of it"
        );

        // Suspend (pause) and GNS3's resume (a start).
        assert_eq!(s.post(&format!("{node}/suspend"), "").status, 204);
        assert_eq!(s.get(&node).json["status"], "suspended");
        let state = e.docker(&["inspect", "-f", "{{.State.Paused}}", &cid]);
        assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "true");
        assert_eq!(s.post(&format!("{node}/start"), "").status, 204);
        assert_eq!(s.get(&node).json["status"], "started");

        // A stop takes the interfaces away; a start makes them again.
        assert_eq!(s.post(&format!("{node}/stop"), "").status, 204);
        assert_eq!(s.get(&node).json["status"], "stopped");
        assert!(veths().is_empty(), "{:?}", veths());
        assert_eq!(s.post(&format!("{node}/start"), "").status, 204);
        assert_eq!(veths().len(), 2, "{:?}", veths());
        let mut c = Console::open(console);
        c.send("\r\nip -o link show eth0\r\n");
        assert!(c.expect(&mac, 10), "eth0 again, with {mac}: {}", c.text());

        // An update that changes what the engine fixed makes the container
        // again at the next start; a rename renames it.
        let r = s.req(
            "PUT",
            &node,
            &json!({"name": "c2", "environment": "GREETING=bye"}).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["name"], "c2");
        assert!(wait_for(5, || {
            let out = e.docker(&["inspect", "-f", "{{.Name}}", &cid]);
            String::from_utf8_lossy(&out.stdout).contains("nanolab.c2.")
        }));

        // Delete: no container, no veth.
        assert_eq!(s.req("DELETE", &node, "").status, 204);
        assert!(
            wait_for(10, || e.containers_of(&s.dir.join("projects")).is_empty()),
            "{:?}",
            e.containers_of(&s.dir.join("projects"))
        );
        assert!(veths().is_empty(), "{:?}", veths());

        // 3.0: its extra keys ignored, GET, a close removes the container.
        let p3 = s.post(
            "/v3/compute/projects",
            &json!({"name": "dk3", "project_id": uuid::Uuid::new_v4().to_string()}).to_string(),
        );
        let p3 = p3.json["project_id"].as_str().unwrap().to_string();
        let base3 = format!("/v3/compute/projects/{p3}/docker/nodes");
        let n = create(
            &s,
            &base3,
            json!({"name": "c3", "image": IMAGE, "compute_id": "local", "builtin": false,
                   "aux_type": "none", "memory": 0, "cpus": 0, "adapters": 1}),
        );
        let node3 = format!("{base3}/{}", n["node_id"].as_str().unwrap());
        assert_eq!(s.get(&node3).json["aux_type"], "none");
        assert_eq!(
            s.get(&node3).json["aux"],
            Value::Null,
            "3.0: only when asked"
        );
        assert_eq!(s.post(&format!("{node3}/start"), "").status, 204);
        assert_eq!(veths().len(), 1);
        let r = s.post(&format!("/v3/compute/projects/{p3}/close"), "");
        assert!(r.status < 300, "{}", r.text);
        assert!(
            wait_for(10, || e.containers_of(&s.dir.join("projects")).is_empty()),
            "{:?}",
            e.containers_of(&s.dir.join("projects"))
        );
        assert!(wait_for(5, || veths().is_empty()), "{:?}", veths());
    });
}

#[test]
fn requests_a_container_node_cannot_serve_say_why() {
    // No engine at the socket named: 409 saying how to start one.
    let dir = temp_dir("no-engine");
    let missing = dir.join("docker.sock").display().to_string();
    let s = Server::start(&["--docker-socket", &missing]);
    let p = s.post("/v2/compute/projects", r#"{"name": "x"}"#).json["project_id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("/v2/compute/projects/{p}/docker/nodes");
    let r = s.post(&base, &json!({"name": "c", "image": IMAGE}).to_string());
    r.assert_error(409, "Can't connect to Docker daemon");
    assert!(r.text.contains("--docker-socket"), "{}", r.text);
    s.get("/v2/compute/docker/images")
        .assert_error(409, "Can't connect to Docker daemon");
    // Bodies: 400 on 2.2, 422 on 3.0.
    s.post(&base, r#"{"name": "c"}"#).assert_error(400, "image");
    s.post(&base, r#"{"name": "c", "image": "a b"}"#)
        .assert_error(400, "image");
    s.post(&base, r#"{"name": "c", "image": "a", "adapters": 100}"#)
        .assert_error(400, "adapters");
    // A create the engine refused leaves no node behind.
    let id = uuid::Uuid::new_v4();
    let r = s.post(
        &base,
        &json!({"name": "c", "image": IMAGE, "node_id": id.to_string()}).to_string(),
    );
    r.assert_error(409, "Can't connect");
    s.get(&format!("/v3/compute/projects/{p}/docker/nodes/{id}"))
        .assert_error(404, "doesn't exist");
}

#[test]
fn containers_an_earlier_run_left_are_removed_at_start() {
    let e = engine();
    let ns = Netns::new("dk2");
    ns.within(move || {
        let projects = temp_dir("dk-projects");
        let socket = e.socket.display().to_string();
        let args = ["--docker-socket", socket.as_str()];
        let s = Server::start_in(&projects, &args);
        let p = s.project();
        let base = format!("/v2/compute/projects/{p}/docker/nodes");
        create(&s, &base, json!({"name": "left", "image": IMAGE}));
        assert_eq!(e.containers_of(&projects).len(), 1);
        crate::util::unsafe_kill(s.pid(), "KILL");
        drop(s);
        assert_eq!(e.containers_of(&projects).len(), 1, "still there");
        let again = Server::start_in(&projects, &args);
        assert!(
            wait_for(10, || e.containers_of(&projects).is_empty()),
            "{:?}\n{}",
            e.containers_of(&projects),
            again.log()
        );
        assert!(
            again.log().contains("left by an earlier run"),
            "{}",
            again.log()
        );
        // A server told to stop removes its containers before it exits.
        let mut again = again;
        let p = again.project();
        let base = format!("/v2/compute/projects/{p}/docker/nodes");
        let n = create(&again, &base, json!({"name": "up", "image": IMAGE}));
        let r = again.post(
            &format!("{base}/{}/start", n["node_id"].as_str().unwrap()),
            "",
        );
        assert_eq!(r.status, 204, "{}", r.text);
        assert_eq!(e.containers_of(&projects).len(), 1);
        assert!(again.terminate().is_some_and(|s| s.success()));
        assert!(
            e.containers_of(&projects).is_empty(),
            "{:?}",
            e.containers_of(&projects)
        );
        assert!(veths().is_empty(), "{:?}", veths());
    });
}

#[test]
fn a_container_pings_a_vpcs_and_a_qemu_vm_across_a_built_in_switch() {
    let e = engine();
    let images = crate::qemu::images();
    let ns = Netns::new("dk3");
    ns.within(move || {
        let s = server(&["--images-dir", &images.display().to_string()]);
        let p = s.project();
        let c = format!("/v2/compute/projects/{p}");
        let sw = create(
            &s,
            &format!("{c}/ethernet_switch/nodes"),
            json!({"name": "SW1"}),
        );
        let sw = format!(
            "{c}/ethernet_switch/nodes/{}",
            sw["node_id"].as_str().unwrap()
        );
        let plug = |node: &str, adapter: u32, port: u32| {
            let (a, b) = (udp(&s, &p), udp(&s, &p));
            link(&s, node, adapter, (a, b));
            let body = json!({"type": "nio_udp", "lport": b, "rhost": "127.0.0.1", "rport": a,
                              "filters": {}, "suspend": false});
            let r = s.post(
                &format!("{sw}/adapters/0/ports/{port}/nio"),
                &body.to_string(),
            );
            assert_eq!(r.status, 201, "{}", r.text);
        };
        let pc = create(&s, &format!("{c}/vpcs/nodes"), json!({"name": "PC1"}));
        let pc_console = pc["console"].as_u64().unwrap() as u16;
        let pc = format!("{c}/vpcs/nodes/{}", pc["node_id"].as_str().unwrap());
        plug(&pc, 0, 0);
        let vm = create(
            &s,
            &format!("{c}/qemu/nodes"),
            json!({"name": "R1", "platform": "x86_64", "ram": 128, "adapters": 1,
                   "hda_disk_image": "disk.qcow2", "kernel_image": "vmlinuz",
                   "initrd": "initrd.img", "console_type": "telnet",
                   "kernel_command_line": "console=ttyS0 quiet ip=10.0.0.3/24 vmname=r1"}),
        );
        let vm_console = vm["console"].as_u64().unwrap() as u16;
        let vm = format!("{c}/qemu/nodes/{}", vm["node_id"].as_str().unwrap());
        plug(&vm, 0, 1);
        let dk = create(
            &s,
            &format!("{c}/docker/nodes"),
            json!({"name": "box", "image": IMAGE, "adapters": 1}),
        );
        let dk_console = dk["console"].as_u64().unwrap() as u16;
        let dk = format!("{c}/docker/nodes/{}", dk["node_id"].as_str().unwrap());
        plug(&dk, 0, 2);
        for n in [&pc, &vm, &dk] {
            let r = s.post(&format!("{n}/start"), "");
            assert_eq!(r.status, 204, "{n}: {}\n{}", r.text, s.log());
        }
        let mut pcc = Console::open(pc_console);
        assert!(pcc.expect("VPCS>", 10), "{}", pcc.text());
        pcc.send("ip 10.0.0.1/24\n");
        let mut vmc = Console::open(vm_console);
        assert!(vmc.expect("r1# ", 90), "R1 did not boot: {}", vmc.text());
        let r = s.post(
            &format!("{dk}/adapters/0/ports/0/start_capture"),
            r#"{"capture_file_name": "box.pcap"}"#,
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let pcap = PathBuf::from(r.json["pcap_file_path"].as_str().unwrap());
        let mut box_ = Console::open(dk_console);
        assert!(box_.expect("/ # ", 10), "{}", box_.text());
        box_.send("ip addr add 10.0.0.5/24 dev eth0\r\n");
        for (to, what) in [("10.0.0.1", "the VPCS"), ("10.0.0.3", "the QEMU VM")] {
            let from = box_.seen.len();
            box_.send(&format!("ping -c 2 -W 2 {to}\r\n"));
            assert!(
                box_.expect_after(from, "2 packets received", 20),
                "the container does not ping {what}: {}\n{}",
                box_.text(),
                crate::gns3::tail(&s.log())
            );
        }
        // And the other way: the VPCS pings the container.
        let from = pcc.seen.len();
        pcc.send("ping 10.0.0.5 -c 2\n");
        assert!(
            pcc.expect_after(from, "icmp_seq=2", 15),
            "the VPCS does not ping the container: {}",
            pcc.text()
        );
        let r = s.post(&format!("{dk}/adapters/0/ports/0/stop_capture"), "");
        assert_eq!(r.status, 204, "{}", r.text);
        let text = crate::gns3::tcpdump(&std::fs::read(&pcap).unwrap());
        for needle in [
            "10.0.0.5 > 10.0.0.1: ICMP echo request",
            "10.0.0.3 > 10.0.0.5: ICMP echo reply",
            "10.0.0.1 > 10.0.0.5: ICMP echo request",
        ] {
            assert!(
                text.contains(needle),
                "{needle} not in the capture:\n{text}"
            );
        }
        let r = s.req("DELETE", &format!("/v2/compute/projects/{p}"), "");
        assert!(r.status < 300, "{}", r.text);
        assert!(wait_for(10, || e
            .containers_of(&s.dir.join("projects"))
            .is_empty()));
        assert!(wait_for(5, || veths().is_empty()), "{:?}", veths());
    });
}

/// A registry of the test's own on loopback (Debian's `docker-registry`),
/// stopped when dropped.
struct Registry {
    child: std::process::Child,
    port: u16,
    _dir: crate::util::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = temp_dir("registry");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian's) is installed");
        let up = wait_for(20, || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "the registry did not listen");
        Registry {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_missing_image_is_pulled_from_its_registry_as_gns3_does() {
    let e = engine();
    // The registry and the engine share the host's loopback; the image
    // is pushed there, then forgotten by the engine.
    let registry = Registry::start();
    let image = format!(
        "127.0.0.1:{}/lab/busybox:{}",
        registry.port,
        std::process::id()
    );
    for args in [
        vec!["tag", IMAGE, image.as_str()],
        vec!["push", image.as_str()],
        vec!["rmi", image.as_str()],
    ] {
        let out = e.docker(&args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ns = Netns::new("dk4");
    let image2 = image.clone();
    ns.within(move || {
        let s = server(&[]);
        let p = s.project();
        let base = format!("/v2/compute/projects/{p}/docker/nodes");
        let n = create(&s, &base, json!({"name": "pulled", "image": image2}));
        assert_eq!(n["image"], image2.as_str());
        let log = s.log();
        assert!(
            log.contains(&format!("Pulling '{image2}' from Docker repository")),
            "{log}"
        );
        assert!(
            log.contains(&format!("Success pulling image {image2}")),
            "{log}"
        );
        let node = format!("{base}/{}", n["node_id"].as_str().unwrap());
        assert_eq!(s.post(&format!("{node}/start"), "").status, 204);
        // Nothing listens at this registry: GNS3's words, the engine's reason.
        let r = s.post(
            &base,
            &json!({"name": "nope", "image": "127.0.0.1:1/lab/nosuch:1"}).to_string(),
        );
        r.assert_error(409, "Could not pull the '127.0.0.1:1/lab/nosuch:1' image");
        assert!(r.text.contains("original error"), "{}", r.text);
        assert_eq!(
            s.req("DELETE", &format!("/v2/compute/projects/{p}"), "")
                .status,
            204
        );
    });
    drop(registry);
    let _ = e.docker(&["rmi", &image]);
}

#[test]
fn a_duplicate_container_node_takes_the_volumes_of_its_origin() {
    let e = engine();
    let ns = Netns::new("dk5");
    ns.within(move || {
        let s = server(&[]);
        let p = s.project();
        let base = format!("/v2/compute/projects/{p}/docker/nodes");
        let body = json!({"name": "r1", "image": IMAGE, "extra_volumes": ["/data"]});
        let a = create(&s, &base, body);
        let a_node = format!("{base}/{}", a["node_id"].as_str().unwrap());
        assert_eq!(s.post(&format!("{a_node}/start"), "").status, 204);
        let mut c = Console::open(a["console"].as_u64().unwrap() as u16);
        c.send("\r\necho kept-$((40+2)) > /data/note; sync; echo wr''itten\r\n");
        assert!(c.expect("written", 10), "{}", c.text());
        // What the controller does: create the copy, then ask for the files.
        let b = create(
            &s,
            &base,
            json!({"name": "r2", "image": IMAGE, "extra_volumes": ["/data"]}),
        );
        let b_id = b["node_id"].as_str().unwrap().to_string();
        let r = s.post(
            &format!("{a_node}/duplicate"),
            &json!({"destination_node_id": b_id}).to_string(),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json["name"], "r2");
        let b_node = format!("{base}/{b_id}");
        assert_eq!(s.post(&format!("{b_node}/start"), "").status, 204);
        let mut d = Console::open(b["console"].as_u64().unwrap() as u16);
        d.send("\r\ncat /data/note\r\n");
        assert!(d.expect("kept-42", 10), "the copy's volume: {}", d.text());
        assert_eq!(
            s.req("DELETE", &format!("/v2/compute/projects/{p}"), "")
                .status,
            204
        );
        let projects = s.dir.join("projects");
        assert!(wait_for(10, || e.containers_of(&projects).is_empty()));
    });
}
