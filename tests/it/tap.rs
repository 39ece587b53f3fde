//! Host links: a VPCS port on a TAP device. Everything happens inside a
//! network namespace the test makes and removes; the host's own interfaces
//! are never touched.

use crate::util::{Console, Server, vm_url};
use std::path::PathBuf;
use std::process::Command;

/// A network namespace of the test's own, deleted (with its devices) on drop.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("nl-{tag}-{}", std::process::id());
        let ns = Netns { name };
        ns.ip_host(&["netns", "add", &ns.name]);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn ip_host(&self, args: &[&str]) {
        let out = Command::new("ip")
            .args(args)
            .output()
            .expect("iproute2 is installed");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        self.ip_host(&all);
    }

    pub fn name(&self) -> String {
        self.name.clone()
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Run `f` on a thread that lives in the namespace: the sockets it opens
    /// and the processes it starts (the server, vpcs) are there too.
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        std::thread::spawn(move || {
            nanolab::sys::enter_netns(&path).expect("enter the test's namespace");
            f()
        })
        .join()
        .expect("the test thread")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn a_vpcs_on_a_tap_pings_the_host_side_of_the_tap() {
    let ns = Netns::new("tap");
    ns.ip(&["tuntap", "add", "dev", "nltap0", "mode", "tap"]);
    ns.ip(&["addr", "add", "10.77.0.1/24", "dev", "nltap0"]);
    ns.ip(&["link", "set", "nltap0", "up"]);
    ns.ip(&["tuntap", "add", "dev", "nltun0", "mode", "tun"]);
    ns.within(|| {
        let srv = Server::start(&[]);
        let p = srv.project();
        let (v, c) = srv.vm(&p, "PC");
        let nio = vm_url(&p, &v, "/adapters/0/ports/0/nio");
        let r = srv.post(&nio, r#"{"type": "nio_tap", "tap_device": "nltap0"}"#);
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            r.json,
            serde_json::json!({"type": "nio_tap", "tap_device": "nltap0"})
        );
        assert_eq!(srv.post(&vm_url(&p, &v, "/start"), "").status, 204);
        let mut con = Console::open(c);
        assert!(con.expect("VPCS>", 10), "{}", con.text());
        con.send("ip 10.77.0.2/24\r\n");
        assert!(con.expect("10.77.0.2 255.255.255.0", 10), "{}", con.text());
        let mark = con.seen.len();
        con.send("ping 10.77.0.1 -c 3\r\n");
        assert!(
            con.expect_after(mark, "10.77.0.1 icmp_seq=2 ttl=64", 15),
            "no reply from the host side of the TAP: {}",
            con.text()
        );
        // A device that exists but is not a TAP: 409 naming it and why.
        let (w, _) = srv.vm(&p, "PC2");
        let nio = vm_url(&p, &w, "/adapters/0/ports/0/nio");
        let r = srv.post(&nio, r#"{"type": "nio_tap", "tap_device": "nltun0"}"#);
        r.assert_error(409, "nltun0");
        assert!(r.text.contains("not a TAP"), "{}", r.text);
    });
}
