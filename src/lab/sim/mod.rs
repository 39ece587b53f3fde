//! The built-in virtual PC: a sans-IO host that speaks VPCS 0.5b2's command
//! language on its console and is an IPv4 host (ARP, ICMP echo) on its one
//! port. It is fed console bytes, frames and `now`, and returns console
//! output, frames and the next time it wants to be woken; it costs nothing
//! while idle. Outputs follow VPCS 0.5b2 byte for byte where a user or a
//! script would notice (`cli.rs` holds the words, `net.rs` the frames).

pub mod cli;
pub mod net;

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// VPCS keeps an address it learnt this long.
pub const ARP_TTL: Duration = Duration::from_secs(120);
/// Addresses a PC remembers (VPCS's `ARP_SIZE`).
pub const ARP_SIZE: usize = 10;
/// Commands remembered by `history` (VPCS's readline keeps 50).
pub const HISTORY: usize = 50;
/// Longest console line kept (VPCS's `MAX_LEN`).
pub const MAX_LINE: usize = 512;
/// Script lines waiting (a `load`ed file); past it, the rest is dropped.
pub const MAX_SCRIPT: usize = 1000;
/// Files a PC keeps (`save NAME`); past it, a new name is refused.
pub const MAX_FILES: usize = 16;
/// How long an ARP request waits for its answer, and how many are sent.
const ARP_WAIT: Duration = Duration::from_millis(1000);
const ARP_TRIES: u8 = 3;

/// A PC's IPv4 settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cfg {
    /// Its address.
    pub addr: Ipv4Addr,
    /// Prefix length.
    pub cidr: u8,
    /// Default gateway.
    pub gw: Option<Ipv4Addr>,
}

impl Ipv4Cfg {
    /// Whether `ip` is on the PC's subnet.
    pub fn local(&self, ip: Ipv4Addr) -> bool {
        let mask = cli::mask(self.cidr);
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

/// What a PC asks of its host after being fed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Out {
    /// Console output.
    pub console: Vec<u8>,
    /// Frames to send on its port.
    pub frames: Vec<Vec<u8>>,
    /// The PC quit (VPCS exits on `quit`): stop it.
    pub quit: bool,
}

/// A command that takes time.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Job {
    /// `ip`: is anyone using the address? (VPCS's gratuitous ARP check.)
    Probe {
        cfg: Ipv4Cfg,
        tries: u8,
        until: Instant,
    },
    /// `ping`, first finding the next hop's MAC.
    Ping(Ping),
    /// `sleep`.
    Sleep { until: Instant },
    /// `ip dhcp`: discover, request, then the duplicate-address check.
    Dhcp(Dhcp),
    /// `trace`.
    Trace(Trace),
}

/// Where `trace` is: the next hop's MAC first, then three probes per TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Trace {
    dst: Ipv4Addr,
    hop: Ipv4Addr,
    hop_mac: Option<[u8; 6]>,
    arp_tries: u8,
    max: u8,
    icmp: bool,
    ttl: u8,
    /// Probes sent at this TTL.
    probe: u8,
    /// The hop's line so far.
    line: String,
    /// The answering address is on the line.
    named: bool,
    /// The trace is over once this hop's line is out.
    reached: bool,
    /// The probe in flight was answered.
    answered: bool,
    /// When the probe in flight left, by the fresh clock.
    sent: Instant,
    until: Instant,
    sport: u16,
}

/// Where `ip dhcp` is: VPCS waits 1, 3 then 9 s for an offer after each
/// discover, 1 s for the ack after each request, then probes the address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dhcp {
    xid: u32,
    phase: DhcpPhase,
    tries: u8,
    until: Instant,
    /// (address, prefix, gateway, server) offered or acknowledged.
    lease: Option<(Ipv4Addr, u8, Option<Ipv4Addr>, Ipv4Addr)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DhcpPhase {
    Discover,
    Request,
    Probe,
}

/// VPCS's waits after each discover.
const DHCP_WAITS: [u64; 3] = [1, 3, 9];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ping {
    /// The host as typed, for timeout lines.
    host: String,
    dst: Ipv4Addr,
    /// The next hop (the host or the gateway) and its MAC once known.
    hop: Ipv4Addr,
    hop_mac: Option<[u8; 6]>,
    arp_tries: u8,
    count: u32,
    /// The sequence number in flight (1-based), or the next to send.
    seq: u32,
    size: usize,
    ttl: u8,
    interval: Duration,
    wait: Duration,
    ident: u16,
    /// When the echo in flight left, or when to send the next.
    sent: Option<Instant>,
    /// The same, by the fresh clock (what its time is measured from).
    stamped: Option<Instant>,
    next: Instant,
}

/// One built-in PC.
#[derive(Debug)]
pub struct Pc {
    name: String,
    mac: [u8; 6],
    ip: Option<Ipv4Cfg>,
    arp: Vec<(Ipv4Addr, [u8; 6], Instant)>,
    line: Vec<u8>,
    /// Inside an escape sequence (arrow keys): bytes still to skip.
    escape: u8,
    history: VecDeque<String>,
    job: Option<Job>,
    script: VecDeque<String>,
    /// The startup file's text, for `load` without a name and `save`.
    files: Files,
    /// Its link, as `show` prints it.
    link: cli::Link,
    /// What `show ip` says of the MTU (`clear ip` makes it 0, as in VPCS).
    mtu: u16,
    ident: u16,
    out: Out,
    /// A fresh monotonic time, for what the PC reports as measured (ping
    /// and trace times): frames that cross only in-memory links arrive
    /// within the loop turn whose `now` every decision uses, so `now`
    /// would measure nothing.
    stamp: crate::lab::settings::Stamp,
}

/// The files a PC reads and writes (`startup.vpc` and `save NAME`): kept in
/// the lab, which writes them to the node's directory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Files {
    /// File name → content.
    pub entries: Vec<(String, String)>,
    /// Files written since the lab last looked.
    pub dirty: Vec<String>,
}

impl Files {
    fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.as_str())
    }

    fn put(&mut self, name: &str, content: String) -> bool {
        let full = self.entries.len() >= MAX_FILES;
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(e) => e.1 = content,
            None if full => return false,
            None => self.entries.push((name.to_string(), content)),
        }
        if !self.dirty.iter().any(|d| d == name) {
            self.dirty.push(name.to_string());
        }
        true
    }
}

impl Pc {
    /// A PC with `mac`, not yet booted.
    pub fn new(mac: [u8; 6], ident: u16, stamp: crate::lab::settings::Stamp) -> Pc {
        Pc {
            stamp,
            name: "VPCS".into(),
            mac,
            ip: None,
            arp: Vec::new(),
            line: Vec::new(),
            escape: 0,
            history: VecDeque::new(),
            job: None,
            script: VecDeque::new(),
            files: Files::default(),
            link: (0, Ipv4Addr::UNSPECIFIED, 0),
            mtu: 1500,
            ident,
            out: Out::default(),
        }
    }

    /// The link `show` prints (its NIO: local port, remote host and port).
    pub fn set_link(&mut self, link: cli::Link) {
        self.link = link;
    }

    /// What it holds, for bounds checks: (line, history, script, ARP
    /// entries, files) lengths.
    pub fn sizes(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.line.len(),
            self.history.len(),
            self.script.len(),
            self.arp.len(),
            self.files.entries.len(),
        )
    }

    /// The files it knows, and those it wrote.
    pub fn files_mut(&mut self) -> &mut Files {
        &mut self.files
    }

    /// Start: the banner, then the startup script (`startup`), then the prompt.
    pub fn boot(&mut self, now: Instant, startup: Option<&str>) -> Out {
        self.out.console.extend_from_slice(cli::BANNER);
        if let Some(script) = startup {
            self.files
                .entries
                .push((cli::STARTUP.into(), script.to_string()));
            self.say("\r\nExecuting the startup file\r\n");
            self.queue_script(script);
        }
        self.run_script(now);
        self.take()
    }

    /// When it wants [`Pc::timer`] called.
    pub fn wake(&self) -> Option<Instant> {
        match &self.job {
            None => None,
            Some(Job::Probe { until, .. }) | Some(Job::Sleep { until }) => Some(*until),
            Some(Job::Dhcp(d)) => Some(d.until),
            Some(Job::Trace(t)) => Some(t.until),
            Some(Job::Ping(p)) => Some(match (p.hop_mac, p.sent) {
                (None, _) => p.next,
                (Some(_), Some(sent)) => sent + p.wait,
                (Some(_), None) => p.next,
            }),
        }
    }

    /// Keys typed on the console.
    pub fn input(&mut self, now: Instant, data: &[u8]) -> Out {
        for &b in data {
            if self.escape > 0 {
                self.escape = if self.escape == 2 && b == b'[' { 1 } else { 0 };
                continue;
            }
            match b {
                // Ctrl-C stops what runs.
                3 if self.job.take().is_some() => {
                    self.script.clear();
                    self.prompt();
                }
                3 => {}
                // VPCS discards what is typed while a command runs.
                _ if self.job.is_some() => {}
                0x1b => self.escape = 2,
                b'\r' | b'\n' => {
                    let line = String::from_utf8_lossy(&self.line).into_owned();
                    self.line.clear();
                    self.enter(now, &line);
                }
                0x08 | 0x7f if self.line.pop().is_some() => self.say("\x08 \x08"),
                0x08 | 0x7f => {}
                0 => {}
                b if b >= 0x20 && self.line.len() < MAX_LINE => {
                    self.line.push(b);
                    self.out.console.push(b);
                }
                _ => {}
            }
        }
        self.take()
    }

    /// A frame arrived on its port.
    pub fn frame(&mut self, now: Instant, frame: &[u8]) -> Out {
        if !net::for_us(frame, self.mac) {
            return self.take();
        }
        match net::parse(frame) {
            net::Rx::ArpRequest {
                sender,
                mac,
                target,
            } => {
                if self.ip.is_some_and(|c| c.addr == target) {
                    self.learn(now, sender, mac);
                    let reply = net::arp(false, self.mac, target, (mac, sender));
                    self.out.frames.push(reply);
                }
            }
            net::Rx::ArpReply { sender, mac } => {
                self.learn(now, sender, mac);
                self.on_arp(now, sender, mac);
            }
            net::Rx::EchoRequest {
                src,
                mac,
                dst,
                ident,
                seq,
                data,
            } => {
                if self.ip.is_some_and(|c| c.addr == dst) {
                    let to = self.arp_lookup(now, src).unwrap_or(mac);
                    let reply = net::echo(true, (self.mac, to), (dst, src), 64, ident, seq, &data);
                    self.out.frames.push(reply);
                }
            }
            net::Rx::EchoReply {
                src,
                ident,
                seq,
                ttl,
            } => {
                if matches!(self.job, Some(Job::Trace(_))) {
                    if ident == self.ident {
                        self.on_trace_answer(now, src, None);
                    }
                } else {
                    self.on_echo_reply(now, src, ident, seq, ttl);
                }
            }
            net::Rx::Dhcp {
                ack,
                xid,
                ip,
                cidr,
                gw,
                server,
            } => {
                if let Some(Job::Dhcp(d)) = &mut self.job
                    && d.xid == xid
                {
                    let wanted = match d.phase {
                        DhcpPhase::Discover => !ack,
                        DhcpPhase::Request => ack,
                        DhcpPhase::Probe => false,
                    };
                    if wanted && d.lease.is_none_or(|l| !ack || l.0 == ip) {
                        d.lease = Some((ip, cidr, gw, server));
                        // Seen at the end of the wait, as VPCS looks.
                        d.tries |= 0x80;
                    }
                }
            }
            net::Rx::Udp {
                src,
                mac,
                dst,
                quote,
            } => {
                // Nobody listens: port unreachable, as VPCS answers a probe.
                if self.ip.is_some_and(|c| c.addr == dst) {
                    let to = self.arp_lookup(now, src).unwrap_or(mac);
                    let f = net::port_unreachable((self.mac, to), (dst, src), &quote);
                    if !f.is_empty() {
                        self.out.frames.push(f);
                    }
                }
            }
            net::Rx::TimeExceeded { src, .. } => self.on_trace_answer(now, src, None),
            net::Rx::Unreachable { src, code } => self.on_trace_answer(now, src, Some(code)),
            net::Rx::Other => {}
        }
        self.take()
    }

    /// Time passed: finish or advance what waits.
    pub fn timer(&mut self, now: Instant) -> Out {
        if self.wake().is_some_and(|t| t <= now) {
            self.step(now);
        }
        self.take()
    }

    fn take(&mut self) -> Out {
        std::mem::take(&mut self.out)
    }

    fn say(&mut self, s: &str) {
        self.out.console.extend_from_slice(s.as_bytes());
    }

    /// A line of output: `\n` becomes `\r\n`, as VPCS's terminal shows it.
    fn println(&mut self, s: &str) {
        for part in s.split('\n') {
            self.say(part);
            self.say("\r\n");
        }
    }

    /// VPCS's prompt, `"\n\r%s> "` through a terminal.
    fn prompt(&mut self) {
        let p = format!("\r\n\r{}> ", self.name);
        self.say(&p);
    }

    fn learn(&mut self, now: Instant, ip: Ipv4Addr, mac: [u8; 6]) {
        self.arp.retain(|(i, ..)| *i != ip);
        if self.arp.len() >= ARP_SIZE {
            self.arp.remove(0);
        }
        self.arp.push((ip, mac, now));
    }

    fn arp_lookup(&self, now: Instant, ip: Ipv4Addr) -> Option<[u8; 6]> {
        self.arp
            .iter()
            .find(|(i, _, t)| *i == ip && now.saturating_duration_since(*t) <= ARP_TTL)
            .map(|(_, m, _)| *m)
    }

    fn queue_script(&mut self, text: &str) {
        for line in text.lines() {
            if self.script.len() >= MAX_SCRIPT {
                break;
            }
            self.script.push_back(line.to_string());
        }
    }

    /// Run script lines until one takes time; the prompt when all are done.
    fn run_script(&mut self, now: Instant) {
        while self.job.is_none() {
            let Some(line) = self.script.pop_front() else {
                self.prompt();
                return;
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            self.command(now, line);
            if self.out.quit {
                return;
            }
        }
    }

    /// Enter was pressed on `line`.
    fn enter(&mut self, now: Instant, line: &str) {
        let line = line.trim();
        if !line.is_empty() {
            if self.history.len() >= HISTORY {
                self.history.pop_front();
            }
            self.history.push_back(line.to_string());
            self.command(now, line);
        }
        if self.job.is_none() && !self.out.quit {
            self.run_script(now);
        }
    }

    /// One command line (typed, or from a script). Like VPCS, a line with
    /// words starts its answer on a new line.
    fn command(&mut self, now: Instant, line: &str) {
        if cli::args(line).is_empty() && !line.starts_with('!') {
            return;
        }
        self.say("\r\n");
        match cli::parse(line) {
            cli::Cmd::Empty => {}
            cli::Cmd::Print(text) => self.println(&text),
            cli::Cmd::Raw(text) => self.say(&text),
            cli::Cmd::Shell => self.println(cli::NO_SHELL),
            cli::Cmd::Quit => self.out.quit = true,
            cli::Cmd::SetName(name) => self.name = name,
            cli::Cmd::Show(cli::Show::Version) => self.say(&cli::version_text()),
            cli::Cmd::Show(what) => {
                let who = (self.name.as_str(), self.mac, self.link);
                let text = cli::show(what, who, (self.ip, self.mtu), &self.arp, now);
                self.println(&text);
            }
            cli::Cmd::History => {
                let list: Vec<String> = self.history.iter().cloned().collect();
                self.println(&cli::history(&list));
            }
            cli::Cmd::ClearIp => {
                self.ip = None;
                self.mtu = 0;
                self.arp.clear();
                self.println("IPv4 address/mask, gateway, DNS, and DHCP cleared");
            }
            cli::Cmd::ClearArp => self.arp.clear(),
            cli::Cmd::ClearHistory => self.history.clear(),
            cli::Cmd::Ip(cfg) => {
                self.println("Checking for duplicate address...");
                self.ip = Some(cfg);
                self.job = Some(Job::Probe {
                    cfg,
                    tries: 1,
                    until: now + ARP_WAIT,
                });
                self.out
                    .frames
                    .push(net::arp(true, self.mac, cfg.addr, ([0; 6], cfg.addr)));
            }
            cli::Cmd::Ping(p) => self.ping(now, p),
            cli::Cmd::Trace(t) => self.trace(now, t),
            cli::Cmd::Dhcp => {
                self.ident = self.ident.wrapping_add(1);
                let xid = u32::from_be_bytes([self.mac[3], self.mac[4], self.mac[5], 0])
                    ^ u32::from(self.ident);
                self.say("D");
                self.out.frames.push(net::dhcp(self.mac, xid, None));
                self.job = Some(Job::Dhcp(Dhcp {
                    xid,
                    phase: DhcpPhase::Discover,
                    tries: 0,
                    until: now + Duration::from_secs(DHCP_WAITS[0]),
                    lease: None,
                }));
            }
            cli::Cmd::Sleep(secs, text) => {
                if !text.is_empty() {
                    self.println(&text);
                }
                self.job = Some(Job::Sleep {
                    until: now + Duration::from_secs(secs),
                });
            }
            cli::Cmd::Save(name) => {
                let text = cli::saved(&self.name, self.ip);
                if self.files.put(&name, text) {
                    self.println(".  done");
                } else {
                    self.println(&format!("Can't save \"{name}\": {MAX_FILES} files already"));
                }
            }
            cli::Cmd::Load(name) => {
                // As typed, then with `.vpc` when it has no extension.
                let found = self.files.get(&name).or_else(|| {
                    (!name.contains('.'))
                        .then(|| self.files.get(&format!("{name}.vpc")))
                        .flatten()
                });
                match found.map(str::to_string) {
                    Some(text) => {
                        self.println(&format!("\nExecuting the file \"{name}\""));
                        self.queue_script(&text);
                    }
                    None => self.println(&format!("Can't open \"{name}\"")),
                }
            }
        }
    }

    fn ping(&mut self, now: Instant, p: cli::PingArgs) {
        let Some(cfg) = self.ip else {
            return self.println("No gateway found");
        };
        if p.dst == cfg.addr {
            for i in 1..=p.count {
                self.println(&format!(
                    "{} icmp_seq={i} ttl={} time=0.001 ms",
                    p.dst, p.ttl
                ));
            }
            return;
        }
        let Some(hop) = self.next_hop(cfg, p.dst) else {
            return;
        };
        self.ident = self.ident.wrapping_add(1);
        let hop_mac = self.arp_lookup(now, hop);
        let mut ping = Ping {
            host: p.host,
            dst: p.dst,
            hop,
            hop_mac,
            arp_tries: 0,
            count: p.count,
            seq: 1,
            size: p.size,
            ttl: p.ttl,
            interval: p.interval,
            wait: p.wait,
            ident: self.ident,
            sent: None,
            stamped: None,
            next: now,
        };
        if hop_mac.is_none() {
            ping.arp_tries = 1;
            ping.next = now + ARP_WAIT;
            self.out
                .frames
                .push(net::arp(true, self.mac, cfg.addr, ([0; 6], hop)));
            self.job = Some(Job::Ping(ping));
        } else {
            self.job = Some(Job::Ping(ping));
            self.send_echo(now);
        }
    }

    /// Where a packet for `dst` goes first: `dst` on the subnet, else the
    /// gateway; VPCS's message when there is none.
    fn next_hop(&mut self, cfg: Ipv4Cfg, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if cfg.local(dst) {
            return Some(dst);
        }
        if cfg.gw.is_none() {
            self.println("No gateway found");
        }
        cfg.gw
    }

    fn send_echo(&mut self, now: Instant) {
        let (mac, Some(cfg)) = (self.mac, self.ip) else {
            return;
        };
        let stamp = self.stamp;
        let Some(Job::Ping(p)) = &mut self.job else {
            return;
        };
        let Some(hop_mac) = p.hop_mac else { return };
        let data = net::payload(p.size);
        let frame = net::echo(
            false,
            (mac, hop_mac),
            (cfg.addr, p.dst),
            p.ttl,
            p.ident,
            p.seq as u16,
            &data,
        );
        p.sent = Some(now);
        p.stamped = Some(stamp.read());
        self.out.frames.push(frame);
    }

    fn on_arp(&mut self, now: Instant, sender: Ipv4Addr, mac: [u8; 6]) {
        match &mut self.job {
            Some(Job::Probe { cfg, .. }) if cfg.addr == sender => {
                let text = format!(
                    "{sender} is being used by MAC {}\nAddress not changed",
                    cli::mac(mac)
                );
                self.ip = None;
                self.arp.clear();
                self.job = None;
                self.println(&text);
                self.run_script(now);
            }
            Some(Job::Ping(p)) if p.hop_mac.is_none() && p.hop == sender => {
                p.hop_mac = Some(mac);
                self.send_echo(now);
            }
            Some(Job::Trace(t)) if t.hop_mac.is_none() && t.hop == sender => {
                t.until = now;
            }
            _ => {}
        }
    }

    fn trace(&mut self, now: Instant, t: cli::TraceArgs) {
        let Some(cfg) = self.ip else {
            return self.println("No gateway found");
        };
        if t.dst == cfg.addr {
            return self.println(&format!(
                "traceroute to {}, {} hops max\n 1 {}     0.001 ms",
                t.host, t.max, t.dst
            ));
        }
        let mode = if t.icmp { " (ICMP)" } else { "" };
        self.println(&format!(
            "trace to {}, {} hops max{mode}, press Ctrl+C to stop",
            t.host, t.max
        ));
        let Some(hop) = self.next_hop(cfg, t.dst) else {
            return;
        };
        self.ident = self.ident.wrapping_add(1);
        let hop_mac = self.arp_lookup(now, hop);
        let mut job = Trace {
            dst: t.dst,
            hop,
            hop_mac,
            arp_tries: 1,
            max: t.max,
            icmp: t.icmp,
            ttl: 1,
            probe: 0,
            line: " 1   ".into(),
            named: false,
            reached: false,
            answered: false,
            sent: self.stamp.read(),
            until: now + ARP_WAIT,
            sport: 1024 + (self.ident % 60_000),
        };
        if hop_mac.is_none() {
            self.out
                .frames
                .push(net::arp(true, self.mac, cfg.addr, ([0; 6], hop)));
            self.job = Some(Job::Trace(job));
        } else {
            self.send_probe(now, &mut job);
            self.job = Some(Job::Trace(job));
        }
    }

    fn send_probe(&mut self, now: Instant, t: &mut Trace) {
        let (Some(cfg), Some(hop_mac)) = (self.ip, t.hop_mac) else {
            return;
        };
        let ends = (self.mac, hop_mac);
        let frame = if t.icmp {
            let data = net::payload(56);
            net::echo(
                false,
                ends,
                (cfg.addr, t.dst),
                t.ttl,
                self.ident,
                u16::from(t.ttl),
                &data,
            )
        } else {
            net::udp_probe(ends, (cfg.addr, t.dst), t.ttl, t.sport)
        };
        t.probe += 1;
        t.answered = false;
        t.sent = self.stamp.read();
        t.until = now + Duration::from_millis(1000);
        self.out.frames.push(frame);
    }

    /// An answer to a probe: a router on the way, the target, or an error.
    fn on_trace_answer(&mut self, now: Instant, src: Ipv4Addr, unreachable: Option<u8>) {
        let stamp = self.stamp;
        let Some(Job::Trace(t)) = &mut self.job else {
            return;
        };
        if t.hop_mac.is_none() || t.answered {
            return;
        }
        let ms = stamp.read().saturating_duration_since(t.sent).as_secs_f64() * 1000.0;
        match unreachable {
            Some(code) => {
                if !t.named {
                    t.line.push_str(&format!(
                        "*{src}   {ms:.3} ms (ICMP type:3, code:{code}, {})",
                        cli::unreachable(code)
                    ));
                    t.named = true;
                }
                t.reached = true;
            }
            None => {
                if !t.named {
                    t.line.push_str(&format!("{src} "));
                    t.named = true;
                }
                t.line.push_str(&format!("  {ms:.3} ms"));
                t.reached |= src == t.dst;
            }
        }
        t.answered = true;
        // On to the next probe at once, as VPCS does once answered.
        t.until = now;
    }

    fn trace_step(&mut self, now: Instant, mut t: Trace) {
        if t.hop_mac.is_none() {
            if let Some(mac) = self.arp_lookup(now, t.hop) {
                t.hop_mac = Some(mac);
            } else if t.arp_tries >= ARP_TRIES {
                self.println(&format!("host ({}) not reachable", t.hop));
                return self.run_script(now);
            } else {
                t.arp_tries += 1;
                t.until = now + ARP_WAIT;
                let ip = self.ip.map_or(Ipv4Addr::UNSPECIFIED, |c| c.addr);
                self.out
                    .frames
                    .push(net::arp(true, self.mac, ip, ([0; 6], t.hop)));
                self.job = Some(Job::Trace(t));
                return;
            }
            self.send_probe(now, &mut t);
            self.job = Some(Job::Trace(t));
            return;
        }
        if !t.answered {
            t.line.push_str("  *");
        }
        if t.probe < 3 {
            self.send_probe(now, &mut t);
            self.job = Some(Job::Trace(t));
            return;
        }
        let line = std::mem::take(&mut t.line);
        self.println(&line);
        if t.reached || t.ttl >= t.max {
            return self.run_script(now);
        }
        t.ttl += 1;
        t.probe = 0;
        t.named = false;
        t.line = format!("{:2}   ", t.ttl);
        self.send_probe(now, &mut t);
        self.job = Some(Job::Trace(t));
    }

    /// A DHCP wait is over: look at what came, as VPCS does after its sleep.
    fn dhcp_step(&mut self, now: Instant, mut d: Dhcp) {
        let got = d.tries & 0x80 != 0;
        let tries = (d.tries & 0x7f) + 1;
        d.tries = tries;
        match (d.phase, got, d.lease) {
            (DhcpPhase::Discover, true, Some((ip, _, _, server))) => {
                self.say("OR");
                d.phase = DhcpPhase::Request;
                d.tries = 0;
                d.until = now + Duration::from_secs(1);
                self.out
                    .frames
                    .push(net::dhcp(self.mac, d.xid, Some((ip, server))));
            }
            (DhcpPhase::Discover, _, _) if usize::from(tries) < DHCP_WAITS.len() => {
                self.say("D");
                d.until = now + Duration::from_secs(DHCP_WAITS[usize::from(tries)]);
                self.out.frames.push(net::dhcp(self.mac, d.xid, None));
            }
            (DhcpPhase::Discover, _, _) => {
                self.println("\nCan't find dhcp server");
                return self.run_script(now);
            }
            (DhcpPhase::Request, true, Some((ip, cidr, gw, _))) => {
                self.say("A");
                d.phase = DhcpPhase::Probe;
                d.tries = 1;
                d.until = now + ARP_WAIT;
                self.ip = Some(Ipv4Cfg { addr: ip, cidr, gw });
                self.out
                    .frames
                    .push(net::arp(true, self.mac, ip, ([0; 6], ip)));
            }
            (DhcpPhase::Request, _, Some((ip, _, _, server))) if tries < 3 => {
                self.say("R");
                d.until = now + Duration::from_secs(1);
                self.out
                    .frames
                    .push(net::dhcp(self.mac, d.xid, Some((ip, server))));
            }
            (DhcpPhase::Request, _, _) => {
                self.println("\nCan't get ip address from dhcp server");
                return self.run_script(now);
            }
            (DhcpPhase::Probe, _, Some((ip, _, _, _))) if tries <= ARP_TRIES => {
                d.until = now + ARP_WAIT;
                self.out
                    .frames
                    .push(net::arp(true, self.mac, ip, ([0; 6], ip)));
            }
            (DhcpPhase::Probe, _, lease) => {
                if let Some((ip, cidr, gw, _)) = lease {
                    self.mtu = 1500;
                    self.say(&format!(" IP {ip}/{cidr}"));
                    if let Some(g) = gw {
                        self.println(&format!(" GW {g}"));
                    }
                }
                return self.run_script(now);
            }
        }
        self.job = Some(Job::Dhcp(d));
    }

    fn on_echo_reply(&mut self, now: Instant, src: Ipv4Addr, ident: u16, seq: u16, ttl: u8) {
        let stamp = self.stamp;
        let Some(Job::Ping(p)) = &mut self.job else {
            return;
        };
        let (Some(_), Some(stamped)) = (p.sent, p.stamped) else {
            return;
        };
        if ident != p.ident || u32::from(seq) != p.seq || src != p.dst {
            return;
        }
        let ms = stamp
            .read()
            .saturating_duration_since(stamped)
            .as_secs_f64()
            * 1000.0;
        let line = format!("{} icmp_seq={} ttl={ttl} time={ms:.3} ms", p.dst, p.seq);
        p.sent = None;
        p.stamped = None;
        p.seq += 1;
        p.next = now + p.interval;
        self.println(&line);
    }

    /// A deadline passed.
    fn step(&mut self, now: Instant) {
        match self.job.take() {
            None => {}
            Some(Job::Sleep { .. }) => self.run_script(now),
            Some(Job::Dhcp(d)) => self.dhcp_step(now, d),
            Some(Job::Trace(t)) => self.trace_step(now, t),
            Some(Job::Probe { cfg, tries, .. }) if tries < ARP_TRIES => {
                self.job = Some(Job::Probe {
                    cfg,
                    tries: tries + 1,
                    until: now + ARP_WAIT,
                });
                self.out
                    .frames
                    .push(net::arp(true, self.mac, cfg.addr, ([0; 6], cfg.addr)));
            }
            Some(Job::Probe { cfg, .. }) => {
                self.ip = Some(cfg);
                self.mtu = 1500;
                self.println(&cli::configured(cfg));
                self.run_script(now);
            }
            Some(Job::Ping(mut p)) => {
                if p.hop_mac.is_none() {
                    if p.arp_tries >= ARP_TRIES {
                        self.println(&format!("host ({}) not reachable", p.hop));
                        return self.run_script(now);
                    }
                    p.arp_tries += 1;
                    p.next = now + ARP_WAIT;
                    let ip = self.ip.map_or(Ipv4Addr::UNSPECIFIED, |c| c.addr);
                    self.out
                        .frames
                        .push(net::arp(true, self.mac, ip, ([0; 6], p.hop)));
                    self.job = Some(Job::Ping(p));
                    return;
                }
                if p.sent.is_some() {
                    // No reply in time.
                    self.println(&format!("{} icmp_seq={} timeout", p.host, p.seq));
                    p.sent = None;
                    p.seq += 1;
                    p.next = now + p.interval;
                    self.job = Some(Job::Ping(p));
                    return;
                }
                if p.seq > p.count {
                    return self.run_script(now);
                }
                self.job = Some(Job::Ping(p));
                self.send_echo(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::settings::Stamp;

    /// Two PCs wired back to back: every frame one sends goes to the
    /// other at once, within one `now`, as in-memory links deliver them.
    fn wire(a: &mut Pc, b: &mut Pc, now: Instant, mut from_a: Vec<Vec<u8>>) -> String {
        let mut console = String::new();
        for _ in 0..16 {
            let mut from_b = Vec::new();
            for f in from_a.drain(..) {
                from_b.extend(b.frame(now, &f).frames);
            }
            for f in from_b {
                let out = a.frame(now, &f);
                console.push_str(&String::from_utf8_lossy(&out.console));
                from_a.extend(out.frames);
            }
        }
        console
    }

    #[test]
    fn a_ping_across_in_memory_links_reports_the_time_it_took() {
        let now = Instant::now();
        let stamp = Stamp(crate::lab::fake::fake_stamp);
        let (mut a, mut b) = (
            Pc::new([2, 0, 0, 0, 0, 1], 1, stamp),
            Pc::new([2, 0, 0, 0, 0, 2], 2, stamp),
        );
        a.boot(now, Some("ip 10.0.0.1/24\n"));
        b.boot(now, Some("ip 10.0.0.2/24\n"));
        // Let the address probes run out.
        let mut now = now;
        for _ in 0..10 {
            now += Duration::from_secs(1);
            a.timer(now);
            b.timer(now);
        }
        let out = a.input(now, b"ping 10.0.0.2 -c 1\r");
        let text = wire(&mut a, &mut b, now, out.frames);
        let time: f64 = text
            .split("time=")
            .nth(1)
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no reply: {text}"));
        // The turn's `now` did not move; the fresh clock did (37 µs a
        // reading here), and the time is what it measured.
        assert!(time > 0.0 && time < 1.0, "{text}");
    }
}
