//! The lab for people and scripts (no I/O): `GET /` and
//! `GET /projects/{id}` draw each project's topology with its live rates
//! ([`svg`]) above tables of links (with a graph of the last minutes),
//! nodes, ports and learnt addresses; `GET /status.json` says the same
//! for scripts.
//!
//! The page needs no script: with JavaScript on, it fetches itself every
//! 2 s and swaps the lab's part in place (no reload, no flicker); with it
//! off, it reloads every 5 s. Everything is served by nanolab itself.

mod json;
mod svg;

pub use json::json;

use crate::api::answer::{Far, Nio, NodeStatus, PortStats, ProjectStatus, Rate, StatusView};
use crate::lab::vlan::PortMode;
use std::fmt::Write;

/// Text made safe for HTML and SVG.
pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A figure for people: 0.5, 12, 3.4k, 1.2M.
pub(super) fn human(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.1}G", v / 1e9),
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e4 => format!("{:.0}k", v / 1e3),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v if v >= 10.0 || v == 0.0 => format!("{v:.0}"),
        v => format!("{v:.1}"),
    }
}

/// A rate each way, as a link label says it (from the port's side: out
/// is towards the far end).
pub(super) fn rate_words(r: &Rate) -> String {
    let mut s = format!(
        "&#8594; {} f/s {}B/s &#183; &#8592; {} f/s {}B/s",
        human(r.out_frames),
        human(r.out_bytes),
        human(r.in_frames),
        human(r.in_bytes)
    );
    if r.dropped > 0.0 {
        let _ = write!(s, " &#183; {} drops/s", human(r.dropped));
    }
    s
}

/// A switch port's mode in words; a trunk never reads like an access port.
pub(super) fn mode_word(m: PortMode) -> String {
    match m {
        PortMode::Access(v) => format!("access VLAN {v}"),
        PortMode::Dot1q { native } => format!("trunk 802.1Q, native VLAN {native}"),
        PortMode::Qinq(v) => format!("QinQ tunnel VLAN {v}"),
    }
}

fn nio_words(nio: &Option<Nio>) -> String {
    match nio {
        Some(Nio::Udp(u)) => format!("UDP {} &#8594; {}:{}", u.lport, esc(&u.rhost), u.rport),
        Some(Nio::Tap(t)) => format!("TAP {}", esc(&t.device)),
        Some(Nio::Ethernet(e)) => format!("interface {}", esc(&e.device)),
        None => "not linked".into(),
    }
}

fn counters(s: &PortStats) -> String {
    format!(
        "{} frames / {} B out, {} / {} B in, {} dropped ({} no link, {} send failed, {} filtered)",
        s.out_frames,
        s.out_bytes,
        s.in_frames,
        s.in_bytes,
        s.dropped,
        s.dropped_unlinked,
        s.dropped_send,
        s.dropped_filtered
    )
}

/// Whether the node is a switch or a hub (ports, not adapters).
pub(super) fn is_device(n: &NodeStatus) -> bool {
    n.kind.starts_with("Ethernet")
}

/// A port's name: `PC1 e0`, `SW1 port 2`.
fn port_name(n: &NodeStatus, i: usize) -> String {
    let p = &n.ports[i];
    if p.mode.is_some() || is_device(n) {
        format!("{} port {}", esc(&n.name), p.port)
    } else {
        format!("{} e{}", esc(&n.name), p.adapter)
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;margin:.5em 0}\
td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}.started{color:#2e7d32}.stopped{color:#757575}\
.starting,.stopping{color:#ef6c00}section{margin-bottom:2em}svg.topology{max-width:100%;height:auto;border:1px solid #eee}";

/// Swap the lab's part for a fresh one every 2 s (no framework, no CDN).
const SCRIPT: &str = "<script>\nsetInterval(async () => {\n  try {\n    const r = await fetch(location.href, {cache: 'no-store'});\n    if (!r.ok) return;\n    const d = new DOMParser().parseFromString(await r.text(), 'text/html');\n    const fresh = d.getElementById('lab');\n    if (fresh) document.getElementById('lab').replaceWith(fresh);\n  } catch (e) {}\n}, 2000);\n</script>\n";

/// The page: every project of `s` (one, for `/projects/{id}`).
pub fn page(s: &StatusView) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>nanolab</title>\
         <noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript><style>{STYLE}</style></head><body>\n\
         <div id=\"lab\">\n"
    );
    let nodes: usize = s.projects.iter().map(|p| p.nodes.len()).sum();
    let _ = writeln!(
        out,
        "<h1>nanolab {}</h1><p>GNS3 compute API {}{}; PCs run on the {} engine; {} project(s), {} node(s). \
         <a href=\"/\">All projects</a> &middot; <a href=\"/status.json\">status.json</a> &middot; \
         <a href=\"/upload\">Restore</a> &middot; <a href=\"/backup/projects.tar\">Backup</a></p>",
        env!("CARGO_PKG_VERSION"),
        crate::api::API_VERSION,
        if s.local { ", local" } else { "" },
        s.pc_engine,
        s.projects.len(),
        nodes
    );
    for p in &s.projects {
        project(&mut out, p);
    }
    if !s.closed.is_empty() {
        out.push_str("<h2>On disk, not open</h2><ul class=\"closed\">");
        for id in &s.closed {
            let _ = write!(
                out,
                "<li><form method=\"post\" action=\"/projects/{id}/open\">{id} \
                 <button type=\"submit\">Open</button></form></li>"
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</div>\n");
    out.push_str(SCRIPT);
    out.push_str("</body></html>\n");
    out
}

fn project(out: &mut String, p: &ProjectStatus) {
    let v = &p.project;
    let _ = writeln!(
        out,
        "<section class=\"project\"><h2><a href=\"/projects/{}\">{}</a></h2><p>{} &middot; {}{}</p>",
        v.id,
        esc(v.name.as_deref().unwrap_or("(unnamed)")),
        v.id,
        esc(&v.path.to_string_lossy()),
        if v.temporary { " (temporary)" } else { "" }
    );
    svg::topology(out, p);
    links_table(out, p);
    nodes_table(out, p);
    out.push_str("</section>\n");
}

fn links_table(out: &mut String, p: &ProjectStatus) {
    if p.links.is_empty() {
        return;
    }
    out.push_str(
        "<h3>Links</h3><table class=\"links\"><tr><th>from</th><th>to</th><th>now</th>\
         <th>last minutes (frames/s, drops/s)</th><th>totals</th></tr>\n",
    );
    for l in &p.links {
        let (n, i) = l.a;
        let port = &p.nodes[n].ports[i];
        let to = match &l.b {
            Far::Port(m, j) => port_name(&p.nodes[*m], *j),
            Far::Outside(what) => esc(what),
        };
        let now = port
            .rate
            .as_ref()
            .map_or_else(|| "&#8212;".into(), rate_words);
        let far = match &l.b {
            Far::Port(m, j) => Some(&p.nodes[*m].ports[*j]),
            Far::Outside(_) => None,
        };
        let either = |f: fn(&crate::api::answer::PortStatus) -> bool| f(port) || far.is_some_and(f);
        let mut marks = String::new();
        if either(|p| p.capturing) {
            marks.push_str(" &#9679; capture");
        }
        if either(|p| p.filtered) {
            marks.push_str(" &#8856; filters");
        }
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{to}</td><td>{now}{marks}</td><td>",
            port_name(&p.nodes[n], i)
        );
        svg::sparkline(out, &port.history);
        let _ = writeln!(out, "</td><td>{}</td></tr>", counters(&port.stats));
    }
    out.push_str("</table>\n");
}

fn nodes_table(out: &mut String, p: &ProjectStatus) {
    out.push_str(
        "<h3>Nodes</h3><table class=\"nodes\"><tr><th>node</th><th>id</th><th>kind</th><th>state</th>\
         <th>console</th><th>ports</th></tr>\n",
    );
    for n in &p.nodes {
        let console = match n.console {
            Some(c) => format!("{c} ({} attached)", n.clients),
            None => "&#8212;".into(),
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{s}\">{s}</td><td>{console}</td><td>",
            esc(&n.name),
            n.id,
            n.kind,
            s = n.state,
        );
        for (i, port) in n.ports.iter().enumerate() {
            let mode = port
                .mode
                .map(|m| format!(", {}", mode_word(m)))
                .unwrap_or_default();
            let _ = write!(
                out,
                "{}{mode}: {}<br>",
                port_name(n, i),
                nio_words(&port.nio)
            );
        }
        if n.ports.is_empty() {
            out.push_str("none");
        }
        out.push_str("</td></tr>\n");
        mac_table(out, n);
    }
    out.push_str("</table>\n");
}

fn mac_table(out: &mut String, n: &NodeStatus) {
    if n.macs.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<tr><td colspan=\"6\">Addresses {} learnt:<table class=\"macs\"><tr><th>VLAN</th><th>MAC</th><th>port</th></tr>",
        esc(&n.name)
    );
    for (vlan, m, port) in &n.macs {
        let _ = write!(
            out,
            "<tr><td>{vlan}</td><td>{}</td><td>{port}</td></tr>",
            mac(m)
        );
    }
    out.push_str("</table></td></tr>\n");
}

pub(super) fn mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::answer::{LinkStatus, PortStatus, ProjectView};
    use crate::lab::types::NioUdp;

    fn port(lport: u16, rport: u16, mode: Option<PortMode>) -> PortStatus {
        PortStatus {
            adapter: 0,
            port: u32::from(lport % 10),
            nio: Some(Nio::Udp(NioUdp {
                lport,
                rhost: "127.0.0.1".into(),
                raddr: [127, 0, 0, 1].into(),
                rport,
            })),
            stats: PortStats {
                out_frames: 3,
                dropped: 1,
                ..Default::default()
            },
            mode,
            capturing: mode.is_none(),
            filtered: true,
            rate: Some(Rate {
                out_frames: 2.0,
                out_bytes: 196.0,
                in_frames: 2.0,
                in_bytes: 196.0,
                dropped: 0.5,
            }),
            history: vec![
                Rate::default(),
                Rate {
                    out_frames: 4.0,
                    ..Default::default()
                },
            ],
        }
    }

    fn view() -> StatusView {
        let node = |name: &str, kind, ports| NodeStatus {
            id: uuid::Uuid::nil(),
            name: name.into(),
            kind,
            state: "started",
            console: Some(2000),
            clients: 1,
            macs: vec![(10, [0, 0x50, 0x79, 0x66, 0x68, 1], 1)],
            ports,
        };
        StatusView {
            local: false,
            pc_engine: "builtin",
            closed: vec![uuid::Uuid::from_u128(7)],
            projects: vec![ProjectStatus {
                project: ProjectView {
                    variables: None,
                    id: uuid::Uuid::nil(),
                    name: Some("<lab>".into()),
                    path: "/p".into(),
                    location: "/".into(),
                    temporary: true,
                },
                nodes: vec![
                    node("PC1", "VPCS", vec![port(10000, 10001, None)]),
                    node(
                        "SW1",
                        "switch",
                        vec![
                            port(10001, 10000, Some(PortMode::Access(10))),
                            port(10002, 10003, Some(PortMode::Dot1q { native: 1 })),
                        ],
                    ),
                ],
                links: vec![
                    LinkStatus {
                        a: (0, 0),
                        b: Far::Port(1, 0),
                    },
                    LinkStatus {
                        a: (1, 1),
                        b: Far::Outside("UDP 192.0.2.1:4000".into()),
                    },
                ],
            }],
        }
    }

    #[test]
    fn the_page_draws_nodes_links_rates_and_modes_escaped() {
        let html = page(&view());
        for needle in [
            "&lt;lab&gt;",
            ">PC1</text>",
            ">VPCS started</text>",
            "console 2000, 1 attached",
            "&#8594; 2.0 f/s 196B/s",
            "0.5 drops/s",
            "&#9679; capture",
            "&#8856; filters",
            "port 1 access VLAN 10",
            "port 2 trunk 802.1Q, native VLAN 1",
            "UDP 192.0.2.1:4000",
            "<polyline",
            "00:50:79:66:68:01",
            "builtin engine",
            "http-equiv=\"refresh\"",
            "id=\"lab\"",
            "action=\"/projects/00000000-0000-0000-0000-000000000007/open\"",
        ] {
            assert!(html.contains(needle), "{needle} missing");
        }
        assert!(!html.contains("<lab>"), "names are escaped");
        assert_eq!(html.matches("class=\"link\"").count(), 2, "each link once");
    }

    #[test]
    fn the_json_says_the_same_with_its_keys_sorted() {
        let text = json(&view());
        let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
        // Re-serialized through a sorted map, it comes out the same.
        let mut sorted = serde_json::to_vec(&v).unwrap();
        sorted.push(b'\n');
        assert_eq!(
            String::from_utf8(sorted).unwrap(),
            String::from_utf8(text).unwrap()
        );
        let p = &v["projects"][0];
        assert_eq!(p["name"], "<lab>");
        assert_eq!(
            p["nodes"][1]["ports"][1]["mode"],
            "trunk 802.1Q, native VLAN 1"
        );
        assert_eq!(p["nodes"][0]["ports"][0]["rate"]["out_frames_per_s"], 2.0);
        let history = &p["nodes"][0]["ports"][0]["history"];
        assert_eq!(history["out_frames_per_s"], serde_json::json!([0.0, 4.0]));
        assert_eq!(p["links"][0]["b"]["port"], 0);
        assert_eq!(p["links"][1]["b"]["outside"], "UDP 192.0.2.1:4000");
        assert_eq!(v["pc_engine"], "builtin");
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(human(0.0), "0");
        assert_eq!(human(0.5), "0.5");
        assert_eq!(human(12.4), "12");
        assert_eq!(human(3_400.0), "3.4k");
        assert_eq!(human(25_000.0), "25k");
        assert_eq!(human(1_200_000.0), "1.2M");
    }
}
