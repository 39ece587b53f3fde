//! The built-in PC's command language, as VPCS 0.5b2 reads and answers it:
//! arguments split on spaces, tabs, `/` and `=`; a command may be any
//! unambiguous prefix of its name; the words of each answer as VPCS prints
//! them.

use super::Ipv4Cfg;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// The startup script's file name.
pub const STARTUP: &str = "startup.vpc";

/// What VPCS prints when it starts, before the startup file.
pub const BANNER: &[u8] = b"\r\r\nWelcome to Virtual PC Simulator, version 0.5b2\r\r\nDedicated to Daling.\r\r\nBuild time: Sep  6 2020 19:00:57\r\r\nCopyright (c) 2007-2014, Paul Meng (mirnshi@gmail.com)\r\r\nAll rights reserved.\r\r\n\r\r\nVPCS is free software, distributed under the terms of the \"BSD\" licence.\r\r\nSource code and license can be found at vpcs.sf.net.\r\r\nFor more information, please visit wiki.freecode.com.cn.\r\r\n\r\nPress '?' to get help.\r\n";

/// The answer to `!`: the built-in PC has no host shell at all.
pub const NO_SHELL: &str =
    "Host commands ('!') are not available on a built-in PC: it has no host shell.";

/// The command table, in VPCS's order (prefixes resolve against it).
const COMMANDS: &[&str] = &[
    "?",
    "arp",
    "clear",
    "dhcp",
    "disconnect",
    "echo",
    "help",
    "history",
    "relay",
    "ip",
    "load",
    "neighbor",
    "ping",
    "quit",
    "tracer",
    "rlogin",
    "save",
    "set",
    "show",
    "version",
    "sleep",
    "zzz",
];

/// What `show` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// The table of PCs.
    Table,
    /// `show ip`.
    Ip,
    /// `show arp`.
    Arp,
    /// `version`.
    Version,
}

/// `ping`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingArgs {
    /// The host as typed.
    pub host: String,
    /// Its address.
    pub dst: Ipv4Addr,
    /// Echoes to send.
    pub count: u32,
    /// Payload bytes.
    pub size: usize,
    /// TTL.
    pub ttl: u8,
    /// Between echoes.
    pub interval: Duration,
    /// How long to wait for each reply.
    pub wait: Duration,
}

/// A command line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// Nothing to do.
    Empty,
    /// Print these lines.
    Print(String),
    /// Print this as it is (no newline added).
    Raw(String),
    /// `!`: refused.
    Shell,
    /// `quit`.
    Quit,
    /// `set pcname`.
    SetName(String),
    /// `show ...`.
    Show(Show),
    /// `history`.
    History,
    /// `clear ip`.
    ClearIp,
    /// `clear arp`.
    ClearArp,
    /// `clear hist`.
    ClearHistory,
    /// `ip ADDR ...`, valid.
    Ip(Ipv4Cfg),
    /// `ping`.
    Ping(PingArgs),
    /// `sleep N [text]`.
    Sleep(u64, String),
    /// `save [file]`.
    Save(String),
    /// `load [file]`.
    Load(String),
    /// `ip dhcp`, `dhcp`.
    Dhcp,
    /// `trace HOST [-P 1|17] [-m N | N]`.
    Trace(TraceArgs),
}

/// `trace`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceArgs {
    /// The host as typed.
    pub host: String,
    /// Its address.
    pub dst: Ipv4Addr,
    /// Hops at most.
    pub max: u8,
    /// ICMP probes (`-P 1`) rather than UDP.
    pub icmp: bool,
}

fn trace(rest: &[&str]) -> Cmd {
    let Some(host) = rest.first().filter(|h| **h != "?") else {
        return Cmd::Print(command_help("tracer"));
    };
    let (mut max, mut icmp) = (8u8, false);
    let mut i = 1;
    while i < rest.len() {
        let a = rest[i];
        i += 1;
        match a {
            "-P" => match rest.get(i) {
                None => return Cmd::Print("Missing protocol".into()),
                Some(&"1") => icmp = true,
                Some(&"17") => icmp = false,
                Some(_) => return Cmd::Print("Invalid protocol".into()),
            },
            "-m" => match rest.get(i).map(|v| v.parse::<u8>()) {
                None => return Cmd::Print("Missing TTL".into()),
                Some(Ok(n)) if (1..=64).contains(&n) => max = n,
                Some(_) => return Cmd::Print("Invalid TTL".into()),
            },
            n if n.bytes().all(|b| b.is_ascii_digit()) => match n.parse::<u8>() {
                Ok(n) if (1..=64).contains(&n) => {
                    max = n;
                    continue;
                }
                _ => return Cmd::Print("Invalid TTL".into()),
            },
            _ => return Cmd::Print(command_help("tracer")),
        }
        i += 1;
    }
    match addr(host) {
        Some(dst) if !dst.is_unspecified() => Cmd::Trace(TraceArgs {
            host: host.to_string(),
            dst,
            max,
            icmp,
        }),
        _ => Cmd::Print(format!("Cannot resolve {host}")),
    }
}

/// ICMP unreachable codes as VPCS words them.
pub fn unreachable(code: u8) -> &'static str {
    match code {
        0 => "Destination network unreachable",
        1 => "Destination host unreachable",
        2 => "Destination protocol unreachable",
        3 => "Destination port unreachable",
        _ => "Destination unreachable",
    }
}

/// Split as VPCS's `mkargv`: on space, tab, `/` and `=`; `"..."` is one.
pub fn args(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('"') {
            match r.find('"') {
                Some(end) => {
                    if end > 0 {
                        out.push(&r[..end]);
                    }
                    rest = &r[end + 1..];
                    continue;
                }
                None => break,
            }
        }
        let end = rest.find([' ', '\t', '/', '=']).unwrap_or(rest.len());
        if end > 0 {
            out.push(&rest[..end]);
        }
        rest = rest.get(end + 1..).unwrap_or("");
    }
    out
}

/// The netmask of a prefix length, as a number.
pub fn mask(cidr: u8) -> u32 {
    if cidr == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(cidr.min(32)))
    }
}

/// A MAC as VPCS prints it.
pub fn mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `inet_addr`: a dotted quad (VPCS also takes fewer parts; not needed here).
fn addr(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

/// Understand one line.
pub fn parse(line: &str) -> Cmd {
    if let Some(rest) = line.strip_prefix('!') {
        let _ = rest;
        return Cmd::Shell;
    }
    let argv = args(line);
    let Some(&first) = argv.first() else {
        return Cmd::Empty;
    };
    if "echo".starts_with(first) {
        let text = line
            .split_once([' ', '\t'])
            .map_or(String::new(), |(_, t)| t.to_string());
        return Cmd::Raw(text);
    }
    let matches: Vec<&str> = COMMANDS
        .iter()
        .copied()
        .filter(|c| c.starts_with(first))
        .collect();
    let name = match matches.as_slice() {
        [] => return Cmd::Print(format!("Bad command: \"{line}\". Use ? for help.")),
        [one] => *one,
        many => return Cmd::Print(many.join("\n")),
    };
    let rest = &argv[1..];
    if rest.last().is_some_and(|a| *a == "?" || *a == "help") && name != "?" && name != "help" {
        return Cmd::Print(command_help(name));
    }
    match name {
        "?" | "help" => Cmd::Print(HELP.into()),
        "arp" => Cmd::Show(Show::Arp),
        "history" => Cmd::History,
        "version" => Cmd::Show(Show::Version),
        "quit" => Cmd::Quit,
        "clear" => match rest.first().copied() {
            Some(w) if "ip".starts_with(w) && w.len() >= 2 => Cmd::ClearIp,
            Some(w) if "arp".starts_with(w) => Cmd::ClearArp,
            Some(w) if "hist".starts_with(w) || "history".starts_with(w) => Cmd::ClearHistory,
            _ => Cmd::Print(command_help("clear")),
        },
        "show" => match rest.first().copied() {
            None => Cmd::Show(Show::Table),
            Some("ip") => Cmd::Show(Show::Ip),
            Some(w) if "arp".starts_with(w) => Cmd::Show(Show::Arp),
            Some(w) if "version".starts_with(w) => Cmd::Show(Show::Version),
            Some(w) if "history".starts_with(w) => Cmd::History,
            Some(_) => Cmd::Print("Invalid arguments".into()),
        },
        "set" => match rest {
            [w, n] if "pcname".starts_with(w) => Cmd::SetName(n.to_string()),
            [w] if "pcname".starts_with(w) => Cmd::Print("Incomplete command.".into()),
            _ => Cmd::Print(command_help("set")),
        },
        "ip" | "dhcp" if rest.first().is_some_and(|w| "dhcp".starts_with(w)) || name == "dhcp" => {
            Cmd::Dhcp
        }
        "ip" => ip(rest),
        "ping" => ping(rest),
        // VPCS reads numbers with `atoi`: at most i32::MAX.
        "sleep" | "zzz" => match rest.first().and_then(|s| s.parse::<u64>().ok()) {
            Some(secs) => {
                let secs = secs.min(i32::MAX as u64);
                let text = line.splitn(3, [' ', '\t']).nth(2).unwrap_or("").to_string();
                Cmd::Sleep(secs, text)
            }
            None => Cmd::Print(command_help("sleep")),
        },
        "save" => Cmd::Save(file_name(rest)),
        "load" => Cmd::Load(rest.first().map_or(STARTUP.to_string(), |n| n.to_string())),
        "disconnect" => Cmd::Empty,
        "tracer" => trace(rest),
        "relay" | "rlogin" | "neighbor" => {
            Cmd::Print(format!("'{name}' is not available on a built-in PC."))
        }
        _ => Cmd::Empty,
    }
}

/// `save` and `load`: the file named, with `.vpc` added when it has no
/// extension, or `startup.vpc`; never a path.
fn file_name(rest: &[&str]) -> String {
    match rest.first() {
        None => STARTUP.into(),
        Some(n) => {
            let base = n.rsplit(['/', '\\']).next().unwrap_or(n);
            if base.contains('.') {
                base.to_string()
            } else {
                format!("{base}.vpc")
            }
        }
    }
}

/// `ip ADDR [MASK|CIDR] [GATEWAY]`, checked as VPCS checks it.
fn ip(rest: &[&str]) -> Cmd {
    let Some(first) = rest.first() else {
        return Cmd::Print(command_help("ip"));
    };
    let Some(a) = addr(first) else {
        return Cmd::Print("Invalid address".into());
    };
    let mut cidr: u8 = 24;
    let mut gw = None;
    for arg in &rest[1..] {
        if arg.len() < 3 && arg.bytes().all(|b| b.is_ascii_digit()) {
            cidr = arg.parse().unwrap_or(24);
        } else if arg.len() > 8 && arg.starts_with("255.") {
            if let Some(c) = addr(arg).and_then(|m| (0..=32u8).find(|c| mask(*c) == u32::from(m))) {
                cidr = c;
            }
        } else if (7..16).contains(&arg.len()) {
            match addr(arg) {
                Some(g) => gw = Some(g),
                None => return Cmd::Print("Invalid address".into()),
            }
        } else {
            return Cmd::Print("Invalid options".into());
        }
    }
    if !(1..=30).contains(&cidr) {
        cidr = 24;
    }
    if gw == Some(a) {
        return Cmd::Print("Invalid address".into());
    }
    let host = |ip: Ipv4Addr| {
        let h = u32::from(ip) & !mask(cidr);
        h != 0 && (h | mask(cidr)) != u32::MAX
    };
    if !host(a) {
        return Cmd::Print("Invalid host address".into());
    }
    if let Some(g) = gw {
        if !host(g) {
            return Cmd::Print("Invalid gateway address".into());
        }
        if u32::from(g) & mask(cidr) != u32::from(a) & mask(cidr) {
            return Cmd::Print("not same subnet".into());
        }
    }
    Cmd::Ip(Ipv4Cfg { addr: a, cidr, gw })
}

/// `ping HOST [-c N] [-l SIZE] [-T TTL] [-i MS] [-w MS]`.
fn ping(rest: &[&str]) -> Cmd {
    let Some(host) = rest.first() else {
        return Cmd::Print(command_help("ping"));
    };
    let mut p = PingArgs {
        host: host.to_string(),
        dst: Ipv4Addr::UNSPECIFIED,
        count: 5,
        size: 64,
        ttl: 64,
        interval: Duration::from_millis(1000),
        wait: Duration::from_millis(1000),
    };
    let mut i = 1;
    while i < rest.len() {
        let opt = rest[i];
        i += 1;
        let Some(flag) = opt.strip_prefix('-') else {
            continue;
        };
        let mut value = || {
            let v = rest
                .get(i)
                .and_then(|v| v.parse::<i64>().ok())
                .map(|v| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)));
            if rest.get(i).is_some() {
                i += 1;
            }
            v.unwrap_or(0)
        };
        match flag.chars().next() {
            Some('c') => p.count = value().clamp(0, u32::MAX as i64) as u32,
            Some('l') => p.size = value().clamp(0, 65_000) as usize,
            Some('T') => p.ttl = value().clamp(0, 255) as u8,
            Some('i') => {
                let v = value();
                p.interval = Duration::from_millis(if v < 1 { 1000 } else { v as u64 });
            }
            Some('w') => {
                let v = value();
                p.wait = Duration::from_millis(if v < 1 { 1000 } else { v as u64 });
            }
            Some('1') | Some('D') => {}
            _ => return Cmd::Print("Invalid options".into()),
        }
    }
    match addr(host) {
        Some(a) if !a.is_unspecified() => {
            p.dst = a;
            Cmd::Ping(p)
        }
        _ => Cmd::Print(format!("Cannot resolve {host}")),
    }
}

/// What `ip` prints once the address is set.
pub fn configured(c: Ipv4Cfg) -> String {
    let mut s = format!("PC1 : {} {}", c.addr, Ipv4Addr::from(mask(c.cidr)));
    if let Some(g) = c.gw {
        s.push_str(&format!(" gateway {g}"));
    }
    s
}

/// What `save` writes: VPCS's startup-file format (the name only when it
/// is not VPCS's own, the address as `ip ADDR [GATEWAY] CIDR`).
pub fn saved(name: &str, ip: Option<Ipv4Cfg>) -> String {
    let mut s = String::new();
    if !name.starts_with("VPC") {
        s.push_str(&format!("set pcname {name}\n"));
    }
    if let Some(c) = ip {
        s.push_str(&format!("ip {}", c.addr));
        if let Some(g) = c.gw {
            s.push_str(&format!(" {g}"));
        }
        s.push_str(&format!(" {}\n", c.cidr));
    }
    s
}

/// `history`: the lines as typed.
pub fn history(lines: &[String]) -> String {
    lines.join("\n")
}

fn pad(buf: &mut String, col: usize) {
    while buf.len() < col {
        buf.push(' ');
    }
}

/// The link a PC shows: its NIO's local port, remote host and port.
pub type Link = (u16, Ipv4Addr, u16);

/// `show`, `show ip`, `show arp`, `version`.
pub fn show(
    what: Show,
    (name, m, link): (&str, [u8; 6], Link),
    (ip, mtu): (Option<Ipv4Cfg>, u16),
    arp: &[(Ipv4Addr, [u8; 6], Instant)],
    now: Instant,
) -> String {
    let (lport, rhost, rport) = link;
    let (addr, cidr, gw) = ip.map_or((Ipv4Addr::UNSPECIFIED, 0, Ipv4Addr::UNSPECIFIED), |c| {
        (c.addr, c.cidr, c.gw.unwrap_or(Ipv4Addr::UNSPECIFIED))
    });
    match what {
        Show::Table => {
            let mut head = String::from("NAME");
            pad(&mut head, 7);
            head.push_str("IP/MASK");
            pad(&mut head, 28);
            head.push_str("GATEWAY");
            pad(&mut head, 46);
            head.push_str("MAC");
            pad(&mut head, 65);
            head.push_str("LPORT");
            pad(&mut head, 72);
            head.push_str("RHOST:PORT");
            let label = if name == "VPCS" {
                "VPCS1".to_string()
            } else {
                name.to_string()
            };
            let mut row = label;
            pad(&mut row, 7);
            row.push_str(&format!("{addr}/{cidr}"));
            pad(&mut row, 28);
            row.push_str(&gw.to_string());
            pad(&mut row, 46);
            row.push_str(&mac(m));
            pad(&mut row, 65);
            row.push_str(&lport.to_string());
            pad(&mut row, 72);
            row.push_str(&format!("{rhost}:{rport}"));
            // VPCS also shows its IPv6 link-local address (EUI-64 of the MAC).
            format!("\n{head}\n{row}\n       {}/64", link_local(m))
        }
        Show::Ip => format!(
            "\nNAME        : {name}[1]\nIP/MASK     : {addr}/{cidr}\nGATEWAY     : {gw}\nDNS         : \nMAC         : {}\nLPORT       : {lport}\nRHOST:PORT  : {rhost}:{rport}\nMTU:        : {mtu}",
            mac(m)
        ),
        Show::Arp => {
            let live: Vec<String> = arp
                .iter()
                .filter(|(_, _, t)| now.saturating_duration_since(*t) <= super::ARP_TTL)
                .map(|(ip, m, t)| {
                    let left = super::ARP_TTL
                        .saturating_sub(now.saturating_duration_since(*t))
                        .as_secs();
                    format!("{}  {ip} expires in {left} seconds ", mac(*m))
                })
                .collect();
            if live.is_empty() {
                "\narp table is empty".into()
            } else {
                format!("\n{}", live.join("\n"))
            }
        }
        // Printed as it is (see `version_text`).
        Show::Version => String::new(),
    }
}

/// What `version` prints, as it is: the banner without its last line.
pub fn version_text() -> String {
    let banner = String::from_utf8_lossy(BANNER);
    banner
        .trim_end_matches("\r\nPress '?' to get help.\r\n")
        .to_string()
}

/// The IPv6 link-local address VPCS derives from a MAC (EUI-64).
pub fn link_local(m: [u8; 6]) -> String {
    let w = [
        u16::from_be_bytes([m[0] ^ 2, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    ];
    format!("fe80::{:x}:{:x}:{:x}:{:x}", w[0], w[1], w[2], w[3])
}

/// `?` and `help`.
pub const HELP: &str = "\n?                        Print help\n! [command [args]]       Invoke an OS command with the 'args' as its arguments\n<digit>                  Switch to the VPC<digit>. <digit> range 1 to 9\narp                      Shortcut for: \x1b[1mshow arp\x1b[0m. Show arp table\nclear [arguments]        Clear IPv4/IPv6, arp/neighbor cache, command history\ndhcp [-options]          Shortcut for: \x1b[1mip dhcp\x1b[0m. Get IPv4 address via DHCP\ndisconnect               Exit the telnet session (daemon mode)\r\necho <text>              Display <text> in output\nhelp                     Print help\nhistory                  Shortcut for: \x1b[1mshow history\x1b[0m. List the command history\nip [arguments]           Configure VPC's IP settings\nload [filename]          Load the configuration/script from the file [filename] (startup.vpc is the default filename).\nping <host> [-options]   Ping the network <host> with ICMP (default) or TCP/UDP\nquit                     Quit program\nrelay [arguments]        Relay packets between two UDP ports\nrlogin [<ip>] <port>     Telnet to host relative to HOST PC\nsave [filename]          Save the configuration to the file [filename] (startup.vpc is the default filename).\nset [arguments]          Set VPC name, peer ports, dump options, echo on or off\nshow [arguments]         Print the information of VPCs (default). Try \x1b[1mshow ?\x1b[0m\nsleep <seconds> [text]   Print <text> and pause the running script for <seconds>\ntrace <host> [-options]  Print the path packets take to network <host>\nversion                  Shortcut for: \x1b[1mshow version\x1b[0m\n\nTo get command syntax help, please enter '?' as an argument of the command.";

/// A command's own help (`ping ?`).
fn command_help(name: &str) -> String {
    let usage = match name {
        "ip" => {
            "ip ARG ... [OPTION]\n  Configure the current VPC's IP settings\n    ARG ...:\n    address [mask] [gateway]\n    address [gateway] [mask]\n                   Set the VPC's ip, default gateway ip and network mask\n                   Default IPv4 mask is /24"
        }
        "ping" => {
            "\x1b[1mping <host> [-options]\x1b[0m\n  Ping the network <host>. <host> can be an ip address or name\n    options:\n     -1             ICMP mode, default\n     -2             UDP mode\n     -3             TCP mode\n     -P <protocol>  Same as above, setting ip protocol\n                    1 - icmp, 17 - udp, 6 - tcp\n     -c <count>     packet count, default 5\n     -l <size>      data size\n     -T <ttl>       set TTL, default 64\n     -s <port>      source port\n     -p <port>      destination port\n     -f <flag>      tcp head flag, |C|E|U|A|P|R|S|F|\n                              bits |7 6 5 4 3 2 1 0|\n     -t             send packet until interrupt by Ctrl+C\n     -i <ms>        wait <ms> milliseconds between sending each packet\n     -w <ms>        wait <ms> milliseconds to receive the response\n\n  Note: 1. Using names requires DNS to be set.\n        2. Use Ctrl+C to stop the command."
        }
        "set" => {
            "set ARG ...\n  Set hostname, connection port, ipfrag state, dump options and echo options\n    ARG:\n    pcname NAME   Set the hostname of the current VPC, name is a string,\n                  maximum length is 12"
        }
        "sleep" => {
            "sleep [seconds] [TEXT]\n  Print TEXT and pause running script for seconds.\n  Default is 5 seconds"
        }
        "tracer" => {
            "\x1b[1mtrace <host> [-options]\x1b[0m\n  Print the path packets take to network <host>. <host> can be an ip address or name.\n    options:\n      -P <protocol>  Use IP <protocol> in trace packets\n                     1 - icmp, 17 - udp (default), 6 - tcp  \n      -m <ttl>       maximum TTL, default 8\n      <ttl>          Same as -m option, compatible with the old version\n\n  Note: 1. Using names requires DNS to be set.\n        2. Use Ctrl+C to stop the command."
        }
        "clear" => {
            "clear ARG\n  Clear ip/ipv6 address, arp/neighbor table, command history\n    ARG:\n    ip            Clear IPv4 address\n    arp           Clear arp table\n    hist          Clear the command history"
        }
        other => return format!("\n\x1b[1m{other}\x1b[0m, see ? for the commands"),
    };
    format!("\n{usage}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_split_as_vpcs_does() {
        assert_eq!(
            args("ip 10.0.0.1/24 10.0.0.254"),
            ["ip", "10.0.0.1", "24", "10.0.0.254"]
        );
        assert_eq!(args("set pcname \"my pc\""), ["set", "pcname", "my pc"]);
        assert_eq!(
            args("  ping   10.0.0.2  -c 2"),
            ["ping", "10.0.0.2", "-c", "2"]
        );
    }

    #[test]
    fn ip_forms_and_errors() {
        let cfg = |a: &str| match parse(a) {
            Cmd::Ip(c) => (c.addr.to_string(), c.cidr, c.gw.map(|g| g.to_string())),
            other => panic!("{a}: {other:?}"),
        };
        assert_eq!(cfg("ip 10.0.0.1/24"), ("10.0.0.1".into(), 24, None));
        assert_eq!(
            cfg("ip 10.0.0.1 255.255.0.0 10.0.9.254"),
            ("10.0.0.1".into(), 16, Some("10.0.9.254".into()))
        );
        assert_eq!(
            cfg("ip 10.0.0.1 10.0.0.254 24"),
            ("10.0.0.1".into(), 24, Some("10.0.0.254".into()))
        );
        assert_eq!(cfg("i 10.0.0.1"), ("10.0.0.1".into(), 24, None));
        for (line, err) in [
            ("ip 300.1.1.1/24", "Invalid address"),
            ("ip 10.0.0.0/24", "Invalid host address"),
            ("ip 10.0.0.1/24 10.0.1.1", "not same subnet"),
            ("ip 10.0.0.1 xyz", "Invalid options"),
            ("frobnicate", "Bad command: \"frobnicate\". Use ? for help."),
            ("s", "save\nset\nshow\nsleep"),
        ] {
            assert_eq!(parse(line), Cmd::Print(err.into()), "{line}");
        }
    }

    #[test]
    fn show_columns_are_vpcs_columns() {
        let c = Ipv4Cfg {
            addr: "10.0.0.1".parse().unwrap(),
            cidr: 24,
            gw: None,
        };
        let link = (20000, Ipv4Addr::LOCALHOST, 20001);
        let who = ("VPCS", [0, 0x50, 0x79, 0x66, 0x68, 0], link);
        let t = show(Show::Table, who, (Some(c), 1500), &[], Instant::now());
        assert!(t.ends_with("\n       fe80::250:79ff:fe66:6800/64"), "{t}");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[1].find("IP/MASK"), Some(7));
        assert_eq!(lines[1].find("GATEWAY"), Some(28));
        assert_eq!(lines[1].find("MAC"), Some(46));
        assert!(lines[2].starts_with("VPCS1  10.0.0.1/24"));
        assert_eq!(lines[2].find("20000"), Some(65));
        assert!(lines[2].ends_with("127.0.0.1:20001"));
        assert_eq!(saved("PC1", Some(c)), "set pcname PC1\nip 10.0.0.1 24\n");
        assert_eq!(saved("VPCS", None), "");
    }
}
