//! Docker nodes: time to create a container node (the engine makes the
//! container) and to start one (attach, start, inspect, veths and their
//! packet sockets), against a `dockerd` this section starts with
//! `--iptables=false --bridge=none --ip-forward=false` and its own
//! directories, and the server's memory per container node. The server
//! runs in a network namespace of the bench's own, where the veths' host
//! ends live; both go at the end.

use super::*;

const IMAGE: &str = "nanolab-busybox:bench";

fn docker(socket: &std::path::Path, args: &[&str]) -> bool {
    let cli = if std::path::Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    };
    Command::new(cli)
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A median and the mean of `times`, in milliseconds.
fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = times.iter().map(|d| ms(*d)).sum::<f64>() / times.len() as f64;
    format!(
        "median {:.1} ms, mean {mean:.1} ms over {}",
        ms(times[times.len() / 2]),
        times.len()
    )
}

pub(crate) fn docker_nodes() {
    if !which("dockerd") || !std::path::Path::new("/bin/busybox").exists() {
        println!("docker: dockerd or busybox-static is not installed, skipped");
        return;
    }
    let dir = std::env::temp_dir().join(format!("nanolab-bench-dockerd-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("rootfs/bin")).unwrap();
    let socket = dir.join("docker.sock");
    let mut engine = Command::new("setpriv")
        .args(["--pdeathsig", "TERM", "dockerd"])
        .args(["--iptables=false", "--bridge=none", "--ip-forward=false"])
        .arg("--data-root")
        .arg(dir.join("root"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--pidfile")
        .arg(dir.join("dockerd.pid"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dockerd");
    let up = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        docker(&socket, &["version"])
    });
    if up {
        std::fs::copy("/bin/busybox", dir.join("rootfs/bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", dir.join("rootfs/bin/sh")).unwrap();
        let tar = dir.join("rootfs.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(dir.join("rootfs"))
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .is_ok_and(|s| s.success());
        let tar = tar.display().to_string();
        if ok
            && docker(
                &socket,
                &["import", "-c", r#"CMD ["/bin/sh"]"#, &tar, IMAGE],
            )
        {
            in_a_namespace(&socket);
        } else {
            println!("docker: the bench image could not be imported");
        }
    } else {
        println!("docker: dockerd did not answer within 30 s");
    }
    let _ = Command::new("kill").arg(engine.id().to_string()).status();
    let _ = engine.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run the measures on a thread inside a namespace of the bench's own.
fn in_a_namespace(socket: &std::path::Path) {
    let ns = format!("nl-bench-{}", std::process::id());
    let made = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        println!("docker: cannot make a network namespace (needs root), skipped");
        return;
    }
    let _ = Command::new("ip")
        .args(["-n", &ns, "link", "set", "lo", "up"])
        .status();
    let path = std::path::PathBuf::from("/run/netns").join(&ns);
    let socket = socket.to_path_buf();
    let _ = std::thread::spawn(move || {
        nanolab::sys::enter_netns(&path).expect("enter the bench's namespace");
        measure(&socket);
    })
    .join();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
}

fn measure(socket: &std::path::Path) {
    let sock = socket.display().to_string();
    let srv = Server::start_tmpfs(&["--docker-socket", &sock, "--console-ports", "40000-41000"]);
    let (_, p) = srv.call("POST", "/v1/projects", r#"{"name": "docker"}"#);
    let p = p["project_id"].as_str().unwrap().to_string();
    let base = format!("/v2/compute/projects/{p}/docker/nodes");
    const N: usize = 20;
    let (mut creates, mut starts, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..N {
        let body = format!(r#"{{"name": "c{i}", "image": "{IMAGE}", "adapters": 2}}"#);
        let t = Instant::now();
        let (code, n) = srv.call("POST", &base, &body);
        creates.push(t.elapsed());
        assert_eq!(code, 201, "{n}");
        ids.push(n["node_id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        let t = Instant::now();
        let (code, n) = srv.call("POST", &format!("{base}/{id}/start"), "");
        starts.push(t.elapsed());
        assert_eq!(code, 204, "{n}");
    }
    println!(
        "docker: create (the engine makes the container): {}",
        summary(&mut creates)
    );
    println!(
        "docker: start (attach, start, inspect, two veths and their packet sockets): {}",
        summary(&mut starts)
    );
    let t = Instant::now();
    for id in &ids {
        srv.call("DELETE", &format!("{base}/{id}"), "");
    }
    println!(
        "docker: delete of {N} started nodes answered in {:.2?} (the engine removes them after)",
        t.elapsed()
    );
    // Memory per node (created, not started): 200 in one project.
    std::thread::sleep(Duration::from_secs(2));
    let before = srv.rss_kib();
    for i in 0..200 {
        let body = format!(r#"{{"name": "m{i}", "image": "{IMAGE}", "adapters": 4}}"#);
        let (code, n) = srv.call("POST", &base, &body);
        assert_eq!(code, 201, "{n}");
    }
    let after = srv.rss_kib();
    println!(
        "docker: server memory per container node (4 adapters, not started): {} bytes",
        (after.saturating_sub(before)) * 1024 / 200
    );
    srv.call("DELETE", &format!("/v1/projects/{p}"), "");
    std::thread::sleep(Duration::from_secs(3));
}
