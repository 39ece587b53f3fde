//! Faults: processes that die, programs that vanish, directories that fail,
//! pools that run dry, signals in the middle of an operation.

use crate::util::{
    Console, Server, alive, children, script, temp_dir, unsafe_kill, vm_url, vpcs_pid, wait_for,
};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn vpcs_killed_while_consoles_are_attached_and_traffic_flows() {
    let srv = Server::start(&[]);
    let p = srv.project();
    let (v1, c1) = srv.vm(&p, "A");
    let (v2, c2) = srv.vm(&p, "B");
    let port = |s: &Server| {
        s.post(&format!("/v1/projects/{p}/ports/udp"), "").json["udp_port"]
            .as_u64()
            .unwrap()
    };
    let (l1, l2) = (port(&srv), port(&srv));
    for (v, l, r) in [(&v1, l1, l2), (&v2, l2, l1)] {
        let body =
            format!(r#"{{"type": "nio_udp", "lport": {l}, "rhost": "127.0.0.1", "rport": {r}}}"#);
        assert_eq!(
            srv.post(&vm_url(&p, v, "/adapters/0/ports/0/nio"), &body)
                .status,
            201
        );
        assert_eq!(srv.post(&vm_url(&p, v, "/start"), "").status, 204);
    }
    let mut a = Console::open(c1);
    let mut watcher = Console::open(c1);
    a.send("ip 10.9.0.1/24\r\n");
    assert!(a.expect("10.9.0.1 255.255.255.0", 10));
    let mut b = Console::open(c2);
    b.send("ip 10.9.0.2/24\r\n");
    assert!(b.expect("10.9.0.2 255.255.255.0", 10));
    let mark = b.seen.len();
    b.send("ping 10.9.0.1 -c 5\r\n");
    assert!(b.expect_after(mark, "ttl=64", 10), "traffic flows");
    unsafe_kill(vpcs_pid(&srv, &v1).unwrap(), "KILL");
    assert!(
        a.expect("VPCS stopped", 5) && watcher.expect("VPCS stopped", 5),
        "both clients told"
    );
    assert_eq!(srv.get("/v1/version").status, 200);
    // B's console and the tunnel's far side are unaffected; A comes back.
    assert!(
        b.expect_after(mark, "VPCS>", 30),
        "the ping ends: {}",
        b.text()
    );
    assert_eq!(srv.post(&vm_url(&p, &v1, "/start"), "").status, 204);
    let m = a.seen.len();
    a.send("ip 10.9.0.1/24\r\n");
    assert!(
        a.expect_after(m, "10.9.0.1 255.255.255.0", 10),
        "{}",
        a.text()
    );
    let m = b.seen.len();
    b.send("ping 10.9.0.1 -c 3\r\n");
    assert!(
        b.expect_after(m, "ttl=64", 10),
        "the tunnel carries traffic again: {}",
        b.text()
    );
}

#[test]
fn the_vpcs_program_vanishes_after_the_vm_was_created() {
    let dir = temp_dir("vanish");
    let prog = dir.join("vpcs");
    std::fs::copy("/usr/bin/vpcs", &prog).unwrap();
    let srv = Server::start(&["--vpcs", prog.to_str().unwrap()]);
    let p = srv.project();
    let (v, _) = srv.vm(&p, "PC");
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o644)).unwrap();
    srv.post(&vm_url(&p, &v, "/start"), "")
        .assert_error(409, "not executable");
    std::fs::remove_file(&prog).unwrap();
    let r = srv.post(&vm_url(&p, &v, "/start"), "");
    r.assert_error(409, prog.to_str().unwrap());
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("apt-get install vpcs")
    );
    std::fs::copy("/usr/bin/vpcs", &prog).unwrap();
    assert_eq!(
        srv.post(&vm_url(&p, &v, "/start"), "").status,
        204,
        "works once it is back"
    );
}

#[test]
fn an_unusable_projects_directory_is_a_clear_error() {
    let srv = Server::start(&[]);
    let projects = srv.dir.join("projects");
    let p = srv.project();
    // Replace the projects directory with a file: nothing can be created in it.
    std::fs::rename(&projects, srv.dir.join("moved")).unwrap();
    std::fs::write(&projects, b"not a directory").unwrap();
    srv.post("/v1/projects", r#"{"name": "x"}"#)
        .assert_error(409, "Cannot create directory");
    assert_eq!(
        srv.get("/v1/version").status,
        200,
        "the server keeps serving"
    );
    srv.post(&format!("/v1/projects/{p}/vpcs/vms"), r#"{"name": "x"}"#)
        .assert_error(409, "Cannot create directory");
    std::fs::remove_file(&projects).unwrap();
    std::fs::rename(srv.dir.join("moved"), &projects).unwrap();
    assert_eq!(
        srv.post(&format!("/v1/projects/{p}/vpcs/vms"), r#"{"name": "x"}"#)
            .status,
        201
    );
}

#[test]
fn a_failed_script_write_leaves_no_partial_file() {
    let srv = Server::start(&[]);
    let p = srv.project();
    let r = srv.post(
        &format!("/v1/projects/{p}/vpcs/vms"),
        r#"{"name": "PC", "startup_script": "ip 10.0.0.1"}"#,
    );
    let v = r.json["vm_id"].as_str().unwrap().to_string();
    let dir = srv
        .dir
        .join("projects")
        .join(&p)
        .join("project-files/vpcs")
        .join(&v);
    // The script's place is taken by a directory: the rename cannot succeed.
    std::fs::remove_file(dir.join("startup.vpc")).unwrap();
    std::fs::create_dir(dir.join("startup.vpc")).unwrap();
    srv.req(
        "PUT",
        &vm_url(&p, &v, ""),
        r#"{"startup_script": "ip 10.0.0.2"}"#,
    )
    .assert_error(409, "startup.vpc");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["startup.vpc".to_string()],
        "no temporary file left behind"
    );
    assert_eq!(srv.get("/v1/version").status, 200);
}

#[test]
fn exhausted_console_and_udp_ranges_are_409() {
    let srv = Server::start(&[
        "--console-ports",
        "23950-23951",
        "--udp-ports",
        "31990-31999",
    ]);
    let p = srv.project();
    srv.vm(&p, "a");
    srv.vm(&p, "b");
    srv.post(&format!("/v1/projects/{p}/vpcs/vms"), r#"{"name": "c"}"#)
        .assert_error(409, "23950-23951");
    assert_eq!(srv.post(&format!("/v1/projects/{p}/close"), "").status, 204);
    // VPCS needs a port and the one 9 above it: a range of 10 fits one VM.
    let q = srv.project();
    let (x, _) = srv.vm(&q, "x");
    let (y, _) = srv.vm(&q, "y");
    assert_eq!(srv.post(&vm_url(&q, &x, "/start"), "").status, 204);
    srv.post(&vm_url(&q, &y, "/start"), "")
        .assert_error(409, "31990-31999");
    assert_eq!(srv.post(&vm_url(&q, &x, "/stop"), "").status, 204);
    assert_eq!(
        srv.post(&vm_url(&q, &y, "/start"), "").status,
        204,
        "freed by the stop"
    );
}

#[test]
fn sigterm_while_a_start_is_pending_stops_everything() {
    let dir = temp_dir("slow");
    let slow = script(
        &dir,
        "slow-vpcs",
        "#!/bin/sh\nsleep 3\nexec /usr/bin/vpcs \"$@\"\n",
    );
    let mut srv = Server::start(&["--vpcs", slow.to_str().unwrap(), "--no-console-sandbox"]);
    let p = srv.project();
    let (v, _) = srv.vm(&p, "PC");
    let addr = srv.addr;
    let url = vm_url(&p, &v, "/start");
    let starter = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        use std::io::Write;
        write!(s, "POST {url} HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap();
        crate::util::read_response(&mut std::io::BufReader::new(s)).map(|r| r.status)
    });
    assert!(
        wait_for(5, || !children(srv.pid()).is_empty()),
        "the wrapper runs"
    );
    let kids = children(srv.pid());
    std::thread::sleep(Duration::from_millis(300));
    let st = srv.terminate().expect("exits");
    assert!(st.success());
    assert!(kids.iter().all(|k| !alive(*k)), "processes left behind");
    let answer = starter.join().unwrap();
    assert!(answer.is_none() || answer == Some(409), "{answer:?}");
}

#[test]
fn sigterm_while_a_stop_is_pending_stops_everything() {
    let mut srv = Server::start(&[]);
    let p = srv.project();
    let (v, _) = srv.vm(&p, "PC");
    assert_eq!(srv.post(&vm_url(&p, &v, "/start"), "").status, 204);
    let pid = vpcs_pid(&srv, &v).unwrap();
    unsafe_kill(pid, "STOP");
    let addr = srv.addr;
    let url = vm_url(&p, &v, "/stop");
    let stopper = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        use std::io::Write;
        write!(s, "POST {url} HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap();
        crate::util::read_response(&mut std::io::BufReader::new(s)).map(|r| r.status)
    });
    assert!(wait_for(5, || srv.log().contains("stopping pid")));
    assert!(srv.terminate().expect("exits").success());
    assert!(!alive(pid), "the frozen vpcs was left behind");
    let answer = stopper.join().unwrap();
    assert!(answer.is_none() || answer == Some(409), "{answer:?}");
}

/// Regression, issue 8: the start time-out of a VPCS whose VM was deleted
/// (or whose project was deleted or closed) fired on a freed slot, panicked
/// outside any guard and took the server, and every lab on it, down.
#[test]
fn regression_8_start_timeout_after_the_vm_is_gone() {
    let srv = Server::start(&[]);
    let started = |p: &str| {
        let (v, _) = srv.vm(p, "PC");
        assert_eq!(srv.post(&vm_url(p, &v, "/start"), "").status, 204);
        v
    };
    let (p1, p2, p3, keep) = (srv.project(), srv.project(), srv.project(), srv.project());
    let kept = started(&keep);
    started(&p1);
    let v2 = started(&p2);
    started(&p3);
    let r = srv.req("DELETE", &format!("/v1/projects/{p1}"), "");
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(srv.req("DELETE", &vm_url(&p2, &v2, ""), "").status, 204);
    let r = srv.post(&format!("/v1/projects/{p3}/close"), "");
    assert_eq!(r.status, 204, "{}", r.text);
    let pid = vpcs_pid(&srv, &kept).unwrap();
    // Past the start time-out (10 s) of the VMs that are gone.
    std::thread::sleep(Duration::from_millis(11_500));
    assert!(
        std::net::TcpStream::connect(srv.addr).is_ok(),
        "the server died: {}",
        srv.log()
    );
    assert_eq!(srv.get("/v1/version").status, 200);
    assert!(alive(pid), "the VM that stayed was killed");
    assert_eq!(srv.get(&vm_url(&keep, &kept, "")).status, 200);
}
