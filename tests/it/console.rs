//! Real vpcs processes: consoles, tunnels, crashes, per-VM queues, shutdown.

use crate::util::{
    Console, Server, alive, read_response, temp_dir, unsafe_kill, vpcs_pid, wait_for,
};
use std::io::{BufReader, Write};
use std::time::{Duration, Instant};

struct Lab {
    srv: Server,
    p: String,
}

impl Lab {
    fn new(extra: &[&str]) -> Lab {
        let srv = Server::start(extra);
        let p = srv.project();
        Lab { srv, p }
    }

    fn url(&self, v: &str, tail: &str) -> String {
        format!("/v1/projects/{}/vpcs/vms/{v}{tail}", self.p)
    }

    fn started_vm(&self, name: &str) -> (String, u16) {
        let (v, c) = self.srv.vm(&self.p, name);
        let r = self.srv.post(&self.url(&v, "/start"), "{}");
        assert_eq!(r.status, 204, "{}", r.text);
        (v, c)
    }

    fn nio(&self, v: &str, l: u16, r: u16) {
        let body =
            format!(r#"{{"type": "nio_udp", "lport": {l}, "rhost": "127.0.0.1", "rport": {r}}}"#);
        let resp = self
            .srv
            .post(&self.url(v, "/adapters/0/ports/0/nio"), &body);
        assert_eq!(resp.status, 201, "{}", resp.text);
    }

    fn udp(&self) -> u16 {
        self.srv
            .post(&format!("/v1/projects/{}/ports/udp", self.p), "{}")
            .json["udp_port"]
            .as_u64()
            .unwrap() as u16
    }

    /// Two started VMs linked by a tunnel, with IPs set: (vm1, vm2, console2, lport1, lport2).
    fn linked_pair(&self) -> (String, String, Console, u16, u16) {
        let (v1, c1) = self.started_vm("A");
        let (v2, c2) = self.started_vm("B");
        let (l1, l2) = (self.udp(), self.udp());
        self.nio(&v1, l1, l2);
        self.nio(&v2, l2, l1);
        let mut a = Console::open(c1);
        a.send("ip 10.0.0.1/24\r\n");
        assert!(a.expect("10.0.0.1 255.255.255.0", 10), "{}", a.text());
        let mut b = Console::open(c2);
        b.send("ip 10.0.0.2/24\r\n");
        assert!(b.expect("10.0.0.2 255.255.255.0", 10), "{}", b.text());
        (v1, v2, b, l1, l2)
    }
}

fn ping_ok(c: &mut Console) -> bool {
    let mark = c.seen.len();
    c.send("ping 10.0.0.1 -c 2\r\n");
    let ok = c.expect_after(mark, "ttl=64", 8);
    // VPCS drops what is typed while a ping runs: wait for its prompt.
    assert!(
        c.expect_after(mark, "VPCS>", 30),
        "the ping never ended: {}",
        c.text()
    );
    ok
}

#[test]
fn consoles_are_shared_and_disconnect_only_ends_one_session() {
    let lab = Lab::new(&[]);
    let (_v, port) = lab.started_vm("PC");
    let mut a = Console::open(port);
    let mut b = Console::open(port);
    assert!(
        a.expect("VPCS>", 5) && b.expect("VPCS>", 5),
        "both see the prompt without pressing Enter"
    );
    assert!(
        b.text().contains("Welcome to Virtual PC Simulator"),
        "recent output replayed: {}",
        b.text()
    );
    let (ma, mb) = (a.seen.len(), b.seen.len());
    a.send("ip 10.1.1.1/24\r\n");
    assert!(a.expect_after(ma, "10.1.1.1 255.255.255.0", 10));
    assert!(
        b.expect_after(mb, "10.1.1.1 255.255.255.0", 10),
        "b sees what a caused"
    );
    let (ma, mb) = (a.seen.len(), b.seen.len());
    b.send("show ip\r\n");
    assert!(b.expect_after(mb, "10.1.1.1/24", 10));
    assert!(a.expect_after(ma, "10.1.1.1/24", 10), "a sees what b typed");
    a.send("disconnect\r\n");
    assert!(
        a.expect("Good-bye", 5) && a.closed_within(5),
        "a's session ends"
    );
    let mb = b.seen.len();
    b.send("show ip\r\n");
    assert!(
        b.expect_after(mb, "10.1.1.1/24", 10),
        "b still works: {}",
        b.text()
    );
    let mut c = Console::open(port);
    assert!(c.expect("VPCS>", 5), "a later client still gets a console");
}

#[test]
fn shell_escape_never_reaches_the_host() {
    let lab = Lab::new(&[]);
    let (_v, port) = lab.started_vm("PC");
    let shell = temp_dir("shell");
    let marker = shell.join("pwned");
    let mut c = Console::open(port);
    assert!(c.expect("VPCS>", 5));
    let mark = c.seen.len();
    c.send(&format!("! touch {}\r\n", marker.display()));
    c.expect_after(mark, "VPCS>", 5);
    std::thread::sleep(Duration::from_millis(500));
    assert!(!marker.exists(), "the shell escape ran a host command");
    let mark = c.seen.len();
    c.send("show ip\r\n");
    assert!(
        c.expect_after(mark, "IP/MASK", 5),
        "console still usable: {}",
        c.text()
    );
}

#[test]
fn a_client_that_never_reads_does_not_stall_the_others() {
    let lab = Lab::new(&[]);
    let (_v, port) = lab.started_vm("PC");
    let stuck = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stuck.set_nonblocking(true).unwrap();
    let mut b = Console::open(port);
    assert!(b.expect("VPCS>", 5));
    // `?` prints a 1.5 KB help screen that the stuck client never reads.
    // VPCS discards what is typed while a command runs, so each command
    // waits for the prompt. (Dropping a client past its output limit is
    // covered by the console module's unit tests: reaching 256 KiB through
    // vpcs takes minutes.)
    for i in 0..20 {
        let mark = b.seen.len();
        b.send("?\r");
        assert!(
            b.expect_after(mark, "VPCS>", 10),
            "b stalled after {i} commands"
        );
    }
    let mark = b.seen.len();
    b.send("show ip\r\n");
    let ok = b.expect_after(mark, "IP/MASK", 10);
    let t = b.text();
    assert!(ok, "{}", &t[t.len().saturating_sub(3000)..]);
    drop(stuck);
}

#[test]
fn nio_removed_and_added_while_running() {
    let lab = Lab::new(&[]);
    let (v1, _v2, mut b, l1, l2) = lab.linked_pair();
    assert!(ping_ok(&mut b), "ping across the tunnel: {}", b.text());
    assert_eq!(
        lab.srv
            .req("DELETE", &lab.url(&v1, "/adapters/0/ports/0/nio"), "")
            .status,
        204
    );
    assert!(!ping_ok(&mut b), "no link, no replies");
    lab.nio(&v1, l1, l2);
    assert!(
        ping_ok(&mut b),
        "link back without restarting: {}",
        b.text()
    );
}

#[test]
fn a_crashed_vpcs_is_noticed_and_can_start_again() {
    let lab = Lab::new(&[]);
    let (v, port) = lab.started_vm("PC");
    let mut c = Console::open(port);
    assert!(c.expect("VPCS>", 5));
    let pid = vpcs_pid(&lab.srv, &v).expect("vpcs runs");
    unsafe_kill(pid, "KILL");
    assert!(
        c.expect("VPCS stopped (signal 9)", 5),
        "clients are told: {}",
        c.text()
    );
    assert_eq!(lab.srv.post(&lab.url(&v, "/start"), "").status, 204);
    let again = vpcs_pid(&lab.srv, &v).expect("a new vpcs runs");
    assert_ne!(pid, again);
    let mark = c.seen.len();
    assert!(
        c.expect_after(mark, "VPCS>", 5),
        "the same console shows the new process"
    );
    assert!(lab.srv.log().contains("exited on its own"));
}

#[test]
fn a_frozen_vpcs_is_killed_and_only_its_vm_waits() {
    let lab = Lab::new(&[]);
    let (v, _) = lab.started_vm("Frozen");
    let (other, _) = lab.srv.vm(&lab.p, "Other");
    let pid = vpcs_pid(&lab.srv, &v).unwrap();
    unsafe_kill(pid, "STOP");
    // Stop and a GET of the same VM, pipelined on one connection.
    let s = lab.srv.connect();
    let started = Instant::now();
    let stop = format!(
        "POST {} HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET {} HTTP/1.1\r\n\r\n",
        lab.url(&v, "/stop"),
        lab.url(&v, "")
    );
    (&s).write_all(stop.as_bytes()).unwrap();
    // Meanwhile, other requests answer while the stop is still pending.
    let r = lab.srv.get(&lab.url(&other, ""));
    assert_eq!(r.status, 200);
    assert_eq!(lab.srv.get("/v1/version").status, 200);
    let others_done = started.elapsed();
    let mut reader = BufReader::new(s);
    let stop_resp = read_response(&mut reader).unwrap();
    let stop_done = started.elapsed();
    assert_eq!(stop_resp.status, 204);
    let get_resp = read_response(&mut reader).unwrap();
    assert_eq!(get_resp.status, 200);
    assert!(
        others_done < stop_done,
        "other requests were held up by the stop"
    );
    assert!(
        stop_done >= Duration::from_secs(2),
        "the grace period was not honoured ({stop_done:?})"
    );
    assert!(!alive(pid), "the frozen vpcs was killed");
    assert!(lab.srv.log().contains("ignored SIGTERM"));
}

#[test]
fn nothing_is_left_running_after_sigint_or_api_shutdown() {
    for how in ["INT", "api"] {
        let mut lab = Lab::new(&["--local"]);
        let (v, _) = lab.started_vm("A");
        let pid = vpcs_pid(&lab.srv, &v).unwrap();
        if how == "api" {
            assert_eq!(lab.srv.post("/v1/server/shutdown", "").status, 201);
        } else {
            unsafe_kill(lab.srv.pid(), how);
        }
        assert!(
            wait_for(10, || matches!(lab.srv.child.try_wait(), Ok(Some(_)))),
            "{how}: server must exit"
        );
        assert!(!alive(pid), "{how}: vpcs left behind");
    }
}

#[test]
fn a_peer_that_is_not_up_yet_does_not_break_the_tunnel() {
    let lab = Lab::new(&[]);
    let (v1, c1) = lab.started_vm("A");
    let (v2, c2) = lab.started_vm("B");
    let (l1, l2) = (lab.udp(), lab.udp());
    // A's frames go to l2, where nobody listens yet: ICMP port unreachable.
    lab.nio(&v1, l1, l2);
    let mut a = Console::open(c1);
    a.send("ip 10.0.0.1/24\r\n");
    assert!(a.expect("10.0.0.1 255.255.255.0", 10));
    let mark = a.seen.len();
    a.send("ping 10.0.0.2 -c 2\r\n");
    assert!(a.expect_after(mark, "VPCS>", 10));
    assert!(!a.text()[mark..].contains("ttl=64"));
    lab.nio(&v2, l2, l1);
    let mut b = Console::open(c2);
    b.send("ip 10.0.0.2/24\r\n");
    assert!(b.expect("10.0.0.2 255.255.255.0", 10));
    assert!(
        ping_ok(&mut b),
        "the tunnel works once the peer is up: {}",
        b.text()
    );
}

#[test]
fn nothing_is_left_running_after_sigterm_or_delete() {
    let mut lab = Lab::new(&[]);
    let (v1, _) = lab.started_vm("A");
    let (v2, _) = lab.started_vm("B");
    let (v3, _) = lab.started_vm("C");
    let pids: Vec<u32> = [&v1, &v2, &v3]
        .iter()
        .map(|v| vpcs_pid(&lab.srv, v).unwrap())
        .collect();
    assert_eq!(lab.srv.req("DELETE", &lab.url(&v3, ""), "").status, 204);
    assert!(
        wait_for(2, || !alive(pids[2])),
        "deleted VM's vpcs still runs"
    );
    let st = lab.srv.terminate().expect("server exits on SIGTERM");
    assert!(st.success());
    assert!(pids.iter().all(|p| !alive(*p)), "vpcs left behind");
}

#[test]
fn closing_a_project_stops_its_vms_and_frees_ports() {
    let lab = Lab::new(&[]);
    let (v, port) = lab.started_vm("A");
    let pid = vpcs_pid(&lab.srv, &v).unwrap();
    let l = lab.udp();
    lab.nio(&v, l, 9);
    assert_eq!(
        lab.srv
            .post(&format!("/v1/projects/{}/close", lab.p), "")
            .status,
        204
    );
    assert!(!alive(pid));
    assert!(
        std::net::UdpSocket::bind(("0.0.0.0", l)).is_ok(),
        "NIO port freed"
    );
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "console port freed"
    );
}

#[test]
fn reload_restarts_the_process() {
    let lab = Lab::new(&[]);
    let (v, _) = lab.started_vm("A");
    let before = vpcs_pid(&lab.srv, &v).unwrap();
    assert_eq!(lab.srv.post(&lab.url(&v, "/reload"), "{}").status, 204);
    let after = vpcs_pid(&lab.srv, &v).unwrap();
    assert!(before != after && !alive(before));
    assert_eq!(lab.srv.post(&lab.url(&v, "/stop"), "{}").status, 204);
    assert!(!alive(after));
}

#[test]
fn moving_the_console_of_a_running_vm_keeps_its_sessions() {
    let lab = Lab::new(&[]);
    let (v, old) = lab.started_vm("PC");
    let mut attached = Console::open(old);
    assert!(attached.expect("VPCS>", 5));
    let new = lab.srv.console.1;
    let r = lab
        .srv
        .req("PUT", &lab.url(&v, ""), &format!(r#"{{"console": {new}}}"#));
    assert_eq!(
        (r.status, r.json["console"].as_u64()),
        (200, Some(new as u64)),
        "{}",
        r.text
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", old)).is_err(),
        "old port closed"
    );
    let mut fresh = Console::open(new);
    assert!(
        fresh.expect("VPCS>", 5),
        "the new port serves the same console"
    );
    let (ma, mf) = (attached.seen.len(), fresh.seen.len());
    attached.send("show ip\r\n");
    assert!(
        attached.expect_after(ma, "IP/MASK", 5),
        "the attached session lives on"
    );
    assert!(fresh.expect_after(mf, "IP/MASK", 5));
}

/// Keys typed while a VPCS command runs are read by VPCS once the command
/// is over, and echoed then by its line editor: the terminal must not echo
/// them as well (they used to show twice).
#[test]
fn keys_typed_during_a_command_are_echoed_once() {
    let srv = crate::util::Server::start(&[]);
    let p = srv.project();
    let (v, c) = srv.vm(&p, "PC");
    assert_eq!(
        srv.post(&crate::util::vm_url(&p, &v, "/start"), "{}")
            .status,
        204
    );
    let mut con = crate::util::Console::open(c);
    assert!(con.expect("VPCS> ", 10), "{}", con.text());
    con.send("ip 10.9.0.1/24\r\n");
    assert!(con.expect("PC1 : 10.9.0.1", 10), "{}", con.text());
    let from = con.seen.len();
    con.send("ping 10.9.0.77 -c 1\r\n");
    std::thread::sleep(std::time::Duration::from_millis(500));
    con.send("zzzz");
    assert!(
        con.expect_after(from, "not reachable", 10),
        "{}",
        con.text()
    );
    con.expect_after(from, "VPCS> ", 5);
    std::thread::sleep(std::time::Duration::from_millis(300));
    con.expect_after(con.seen.len(), "never", 1);
    assert_eq!(
        con.text()[from..].matches("zzzz").count(),
        1,
        "{}",
        con.text()
    );
}
