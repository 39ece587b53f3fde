//! A project's topology and a link's recent traffic, drawn as SVG by the
//! server (no I/O, no script): nodes on a circle with their state,
//! console and clients; each link once, labelled with its rate each way,
//! its drops, and whether a capture or filters act on it; a switch port's
//! mode at its end; links to the outside end in a dashed box that names
//! the far end. Every label is SVG text, so a browser, a screen reader and
//! a test all read the same words.

use super::{esc, human, mode_word, rate_words};
use crate::api::answer::{Far, NodeStatus, ProjectStatus, Rate};
use std::fmt::Write;

const W: f64 = 860.0;
const BOX_W: f64 = 150.0;
const BOX_H: f64 = 58.0;

/// Where each node's centre goes, and the picture's height.
fn layout(n: usize) -> (Vec<(f64, f64)>, f64) {
    if n == 1 {
        return (vec![(W / 2.0, 110.0)], 240.0);
    }
    let r = (70.0 + 34.0 * n as f64).min(320.0);
    let (cx, cy) = (W / 2.0, r + 70.0);
    let points = (0..n)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / n as f64 - std::f64::consts::FRAC_PI_2;
            // The libm crate's, not the C library's: that one call would
            // map all of libm.so into the server (0.3 MiB of its idle RSS).
            let (sin, cos) = libm::sincos(a);
            (cx + r * 1.15 * cos, cy + r * sin)
        })
        .collect();
    (points, 2.0 * r + 140.0)
}

fn state_colour(state: &str) -> &'static str {
    match state {
        "started" => "#2e7d32",
        "starting" | "stopping" => "#ef6c00",
        _ => "#757575",
    }
}

/// The order nodes go around the circle: linked nodes side by side
/// (depth first from the most linked one), so that few links cross.
fn circle_order(p: &ProjectStatus) -> Vec<usize> {
    let n = p.nodes.len();
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    for l in &p.links {
        if let Far::Port(b, _) = l.b {
            next[l.a.0].push(b);
            next[b].push(l.a.0);
        }
    }
    let mut order = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    let mut starts: Vec<usize> = (0..n).collect();
    starts.sort_by_key(|&i| std::cmp::Reverse(next[i].len()));
    for s in starts {
        let mut stack = vec![s];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            order.push(i);
            stack.extend(next[i].iter().rev().filter(|&&j| !seen[j]));
        }
    }
    order
}

/// The project drawn.
pub fn topology(out: &mut String, p: &ProjectStatus) {
    let (spots, h) = layout(p.nodes.len().max(1));
    let mut at = spots.clone();
    for (spot, i) in circle_order(p).into_iter().enumerate() {
        at[i] = spots[spot];
    }
    let _ = write!(
        out,
        "<svg class=\"topology\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {h}\" \
         width=\"{W}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" \
         aria-label=\"topology of {}\">",
        esc(p.project.name.as_deref().unwrap_or("(unnamed)"))
    );
    for l in &p.links {
        link(out, p, &at, l.a, &l.b);
    }
    for (i, n) in p.nodes.iter().enumerate() {
        node(out, n, at[i]);
    }
    if p.nodes.is_empty() {
        out.push_str("<text x=\"20\" y=\"40\">no nodes yet</text>");
    }
    out.push_str("</svg>\n");
}

fn node(out: &mut String, n: &NodeStatus, (x, y): (f64, f64)) {
    let (left, top) = (x - BOX_W / 2.0, y - BOX_H / 2.0);
    let colour = state_colour(n.state);
    let console = match n.console {
        Some(c) => format!("console {c}, {} attached", n.clients),
        None => "no console".into(),
    };
    let _ = write!(
        out,
        "<g class=\"node\" data-id=\"{id}\"><title>{name} ({kind}) {id}</title>\
         <rect x=\"{left:.1}\" y=\"{top:.1}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"6\" \
         fill=\"#fff\" stroke=\"{colour}\" stroke-width=\"2\"/>\
         <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\">{name}</text>\
         <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{colour}\">{kind} {state}</text>\
         <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{console}</text></g>",
        top + 17.0,
        top + 33.0,
        top + 49.0,
        id = n.id,
        name = esc(&n.name),
        kind = n.kind,
        state = n.state,
    );
}

/// A point `d` along the way from `a` to `b`, stopped at `a`'s box edge
/// when `d` is 0.
fn toward((ax, ay): (f64, f64), (bx, by): (f64, f64), d: f64) -> (f64, f64) {
    (ax + (bx - ax) * d, ay + (by - ay) * d)
}

fn link(out: &mut String, p: &ProjectStatus, at: &[(f64, f64)], a: (usize, usize), b: &Far) {
    let pa = &p.nodes[a.0].ports[a.1];
    let from = at[a.0];
    let (to, far_name) = match b {
        Far::Port(n, _) => (at[*n], None),
        Far::Outside(what) => {
            // Outward from the picture's centre (rightward for a lone node).
            let (cx, cy) = (
                W / 2.0,
                at.iter().map(|p| p.1).sum::<f64>() / at.len() as f64,
            );
            let (dx, dy) = (from.0 - cx, from.1 - cy);
            let len = (dx * dx + dy * dy).sqrt();
            let (ux, uy) = if len < 1.0 {
                (1.0, 0.0)
            } else {
                (dx / len, dy / len)
            };
            let k = 95.0 + 12.0 * a.1 as f64;
            ((from.0 + ux * k * 1.6, from.1 + uy * k), Some(what))
        }
    };
    // A capture or filters at either end act on the link.
    let pb = match b {
        Far::Port(n, j) => Some(&p.nodes[*n].ports[*j]),
        Far::Outside(_) => None,
    };
    let either = |f: fn(&crate::api::answer::PortStatus) -> bool| f(pa) || pb.is_some_and(f);
    let marks = format!(
        "{}{}",
        if either(|p| p.capturing) {
            " &#9679; capture"
        } else {
            ""
        },
        if either(|p| p.filtered) {
            " &#8856; filters"
        } else {
            ""
        }
    );
    let words = match pa.rate {
        Some(r) => rate_words(&r),
        None => format!("{} frames so far", pa.stats.out_frames + pa.stats.in_frames),
    };
    let drops = if pa.stats.dropped > 0 {
        format!(", {} dropped", pa.stats.dropped)
    } else {
        String::new()
    };
    let (mx, my) = toward(from, to, 0.5);
    let dash = if far_name.is_some() {
        " stroke-dasharray=\"5 4\""
    } else {
        ""
    };
    let _ = write!(
        out,
        "<g class=\"link\"><line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#1565c0\" \
         stroke-width=\"2\"{dash}/><text class=\"rate\" x=\"{mx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" \
         font-size=\"10\" fill=\"#0d47a1\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{words}{drops}{marks}</text>",
        from.0,
        from.1,
        to.0,
        to.1,
        my - 4.0
    );
    end_label(out, from, to, &p.nodes[a.0], a.1);
    match (b, far_name) {
        (Far::Port(n, j), _) => end_label(out, to, from, &p.nodes[*n], *j),
        (_, Some(what)) => {
            let w = 9.0 + 6.5 * what.chars().count() as f64;
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"22\" rx=\"4\" fill=\"#fffde7\" \
                 stroke=\"#999\" stroke-dasharray=\"3 3\"/><text class=\"far\" x=\"{:.1}\" y=\"{:.1}\" \
                 text-anchor=\"middle\" font-size=\"11\">{}</text>",
                to.0 - w / 2.0,
                to.1 - 11.0,
                to.0,
                to.1 + 4.0,
                esc(what)
            );
        }
        _ => {}
    }
    out.push_str("</g>");
}

/// The port's name (and a switch port's mode) near its end of a link.
fn end_label(out: &mut String, from: (f64, f64), to: (f64, f64), n: &NodeStatus, i: usize) {
    let port = &n.ports[i];
    let (x, y) = toward(from, to, 0.3);
    let name = match port.mode {
        Some(m) => format!("port {} {}", port.port, mode_word(m)),
        None if super::is_device(n) => format!("port {}", port.port),
        None => format!("e{}", port.adapter),
    };
    let _ = write!(
        out,
        "<text class=\"end\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\" \
         fill=\"#444\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\">{name}</text>",
        y + 12.0
    );
}

/// A small graph of a port's recent rates: frames per second both ways
/// (blue) and drops per second (red), scaled to the highest.
pub fn sparkline(out: &mut String, history: &[Rate]) {
    const SW: f64 = 180.0;
    const SH: f64 = 28.0;
    let _ = write!(
        out,
        "<svg class=\"spark\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{SW}\" height=\"{SH}\" \
         viewBox=\"0 0 {SW} {SH}\"><rect width=\"{SW}\" height=\"{SH}\" fill=\"#f5f5f5\"/>"
    );
    // One rate is a level line until the next comes.
    let one;
    let history = match history {
        [r] => {
            one = [*r, *r];
            &one[..]
        }
        h => h,
    };
    if history.len() >= 2 {
        let total = |r: &Rate| r.out_frames + r.in_frames;
        let top = history
            .iter()
            .map(|r| total(r).max(r.dropped))
            .fold(1e-9, f64::max);
        let step = SW / (history.len() - 1) as f64;
        for (colour, value) in [
            ("#1565c0", &total as &dyn Fn(&Rate) -> f64),
            ("#c62828", &|r: &Rate| r.dropped),
        ] {
            let pts: Vec<String> = history
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    format!(
                        "{:.1},{:.1}",
                        i as f64 * step,
                        SH - 2.0 - (SH - 4.0) * value(r) / top
                    )
                })
                .collect();
            let _ = write!(
                out,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
                pts.join(" ")
            );
        }
        let peak = human(top);
        let _ = write!(
            out,
            "<text x=\"2\" y=\"10\" font-size=\"9\">peak {peak} f/s</text>"
        );
    } else {
        out.push_str(
            "<text x=\"4\" y=\"18\" font-size=\"10\" fill=\"#777\">gathering&#8230;</text>",
        );
    }
    out.push_str("</svg>");
}
