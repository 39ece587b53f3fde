//! The pages for people, outside `/v1` (no I/O): a status page of the whole
//! lab (`GET /`), the upload form and the restore of a projects archive
//! (`/upload`, as GNS3 1.3.13 has them), and the projects backup
//! (`GET /backup/projects.tar`, streamed by the reactor).

use super::answer::{Answer, Body, Nio, NodeStatus, PortStats, Reply, StatusView};
use super::command::Command;
use super::multipart;
use super::v1::Decoded;
use crate::error::ApiError;
use crate::proto::http::auth::Credentials;
use crate::proto::http::parse::{Method, Request};
use crate::proto::http::response::Response;
use std::fmt::Write;

/// The pages: (path, methods).
const PAGES: &[(&str, &[Method])] = &[
    ("/", &[Method::Get]),
    ("/upload", &[Method::Get, Method::Post]),
    ("/backup/projects.tar", &[Method::Get]),
];

/// Decode a request for a page.
pub fn decode(req: &Request, auth: Option<&Credentials>) -> Decoded {
    if auth.is_some_and(|c| !c.accepts(req.authorization.as_deref())) {
        return Decoded {
            route: None,
            command: Err(ApiError::Unauthorized),
        };
    }
    let Some(&(route, methods)) = PAGES.iter().find(|(p, _)| *p == req.path) else {
        let e = ApiError::NotFound(format!(
            "Route {} doesn't exist: API routes start with /v1/, for example GET /v1/version; \
             GET / shows the lab",
            req.path
        ));
        return Decoded {
            route: None,
            command: Err(e),
        };
    };
    let command = match (route, &req.method) {
        ("/", Method::Get) => Ok(Command::Status),
        ("/upload", Method::Get) => Ok(Command::UploadForm),
        ("/upload", Method::Post) => restore(req),
        ("/backup/projects.tar", Method::Get) => Ok(Command::BackupProjects),
        _ => Err(ApiError::MethodNotAllowed {
            method: req.method.as_str().to_string(),
            route,
            allowed: methods
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    };
    Decoded {
        route: Some(route),
        command,
    }
}

/// `POST /upload`: fields `type` and `file`, as GNS3 1.3.13's form sends.
fn restore(req: &Request) -> Result<Command, ApiError> {
    let parts = multipart::parse(req.content_type.as_deref().unwrap_or(""), &req.body)?;
    let field = |name: &str| parts.iter().find(|p| p.name == name);
    let kind = field("type").map(|p| String::from_utf8_lossy(p.data).trim().to_string());
    match kind.as_deref() {
        Some("PROJECTS") => {}
        Some(other) => {
            return Err(ApiError::Forbidden(format!(
                "Uploads of type '{other}' are not supported here: only PROJECTS (a tar of the \
                 projects directory, as GET /backup/projects.tar makes) can be restored"
            )));
        }
        None => {
            return Err(ApiError::bad(
                "The upload form needs a 'type' field (PROJECTS)",
            ));
        }
    }
    match field("file") {
        Some(f) if !f.data.is_empty() => Ok(Command::RestoreProjects(f.data.to_vec())),
        _ => Err(ApiError::bad(
            "The upload form needs a non-empty 'file' field: curl -F type=PROJECTS -F file=@projects.tar",
        )),
    }
}

/// Render a page answer.
pub fn render(route: Option<&'static str>, reply: Reply) -> Response {
    match reply {
        Ok(Answer::Ok(Body::Status(s))) => Response::html(200, status_page(&s)),
        Ok(Answer::Ok(Body::Backup(_))) => Response::chunked("application/x-gtar"),
        Ok(Answer::Created(Body::Restored(_))) => Response::redirect("/upload"),
        Ok(_) => Response::html(200, UPLOAD_FORM.to_string()),
        Err(e) => Response::error(&e),
    }
    .with_route(route)
}

const UPLOAD_FORM: &str = "<!doctype html>
<html><head><meta charset=\"utf-8\"><title>nanolab: restore projects</title></head>
<body><h1>Restore projects</h1>
<p>Upload a tar of the projects directory (as <a href=\"/backup/projects.tar\">/backup/projects.tar</a>
makes). An archive with an entry that would land outside the projects directory is refused
as a whole.</p>
<form enctype=\"multipart/form-data\" action=\"/upload\" method=\"post\">
<select name=\"type\"><option value=\"PROJECTS\">PROJECTS</option></select>
<input type=\"file\" name=\"file\"> <input type=\"submit\" value=\"Upload\">
</form><p><a href=\"/\">Back to the lab</a></p></body></html>
";

/// Text made safe for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn link(nio: &Option<Nio>) -> String {
    match nio {
        Some(Nio::Udp(u)) => format!("UDP {} &rarr; {}:{}", u.lport, esc(&u.rhost), u.rport),
        Some(Nio::Tap(t)) => format!("TAP {}", esc(&t.device)),
        Some(Nio::Ethernet(e)) => format!("interface {}", esc(&e.device)),
        None => "&mdash;".into(),
    }
}

fn counters(s: &PortStats) -> String {
    format!(
        "{} / {} B out, {} / {} B in, {} dropped ({} with no link, {} failed to send)",
        s.out_frames,
        s.out_bytes,
        s.in_frames,
        s.in_bytes,
        s.dropped,
        s.dropped_unlinked,
        s.dropped_send
    )
}

fn mac_table(out: &mut String, n: &NodeStatus) {
    if n.macs.is_empty() {
        return;
    }
    let _ = write!(out, "<tr><td colspan=7>{} learnt: ", esc(&n.name));
    for (vlan, m, port) in &n.macs {
        let _ = write!(
            out,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} (VLAN {vlan}, port {port}) ",
            m[0], m[1], m[2], m[3], m[4], m[5]
        );
    }
    out.push_str("</td></tr>");
}

fn node_rows(out: &mut String, n: &NodeStatus) {
    if n.ports.is_empty() {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class={state}>{state}</td><td>&mdash;</td>\
             <td colspan=3>no port linked</td></tr>",
            esc(&n.name),
            n.kind,
            state = n.state
        );
        return;
    }
    let ports = n.ports.len();
    for (i, (adapter, port, nio, stats)) in n.ports.iter().enumerate() {
        out.push_str("<tr>");
        if i == 0 {
            let _ = write!(
                out,
                "<td rowspan={ports}>{}</td><td rowspan={ports}>{}</td><td rowspan={ports} class={state}>{state}</td>\
                 <td rowspan={ports}>{}</td>",
                esc(&n.name),
                n.kind,
                match n.console {
                    Some(c) => format!("{c} ({} attached)", n.clients),
                    None => "&mdash;".into(),
                },
                state = n.state,
            );
        }
        let _ = write!(
            out,
            "<td>{adapter}/{port}</td><td>{}</td><td>{}</td></tr>",
            link(nio),
            counters(stats)
        );
    }
}

/// The lab at a glance; reloads itself every 5 s, and is cheap to build.
fn status_page(s: &StatusView) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
         <title>nanolab</title><style>body{font-family:sans-serif}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:2px 6px}.started{color:green}.stopped{color:gray}</style>\
         </head><body>\n",
    );
    let nodes: usize = s.projects.iter().map(|(_, n)| n.len()).sum();
    let _ = writeln!(
        out,
        "<h1>nanolab {}</h1><p>GNS3 compute API {}{}; {} project(s), {} node(s). \
         <a href=\"/upload\">Restore</a> &middot; <a href=\"/backup/projects.tar\">Backup</a></p>",
        env!("CARGO_PKG_VERSION"),
        super::API_VERSION,
        if s.local { ", local" } else { "" },
        s.projects.len(),
        nodes
    );
    for (p, nodes) in &s.projects {
        let _ = write!(
            out,
            "<h2>{}</h2><p>{} &middot; {}{}</p>\n<table><tr><th>node</th><th>kind</th><th>state</th>\
             <th>console</th><th>port</th><th>link</th><th>frames and bytes</th></tr>\n",
            esc(p.name.as_deref().unwrap_or("(unnamed)")),
            p.id,
            esc(&p.path.to_string_lossy()),
            if p.temporary { " (temporary)" } else { "" }
        );
        for n in nodes {
            node_rows(&mut out, n);
            mac_table(&mut out, n);
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::answer::{NioUdp, ProjectView};
    use crate::proto::http::parse::RequestParser;

    fn req(raw: &str) -> Request {
        RequestParser::new()
            .feed(raw.as_bytes())
            .unwrap()
            .request
            .unwrap()
    }

    #[test]
    fn the_status_page_shows_nodes_links_and_counters_escaped() {
        let view = StatusView {
            local: false,
            projects: vec![(
                ProjectView {
                    variables: None,
                    id: uuid::Uuid::nil(),
                    name: Some("<lab>".into()),
                    path: "/p".into(),
                    location: "/".into(),
                    temporary: true,
                },
                vec![NodeStatus {
                    id: uuid::Uuid::nil(),
                    name: "PC1".into(),
                    kind: "VPCS",
                    state: "started",
                    console: Some(2000),
                    clients: 1,
                    macs: vec![(10, [0, 0x50, 0x79, 0x66, 0x68, 1], 1)],
                    ports: vec![(
                        0,
                        0,
                        Some(Nio::Udp(NioUdp {
                            lport: 10000,
                            rhost: "127.0.0.1".into(),
                            raddr: [127, 0, 0, 1].into(),
                            rport: 10001,
                        })),
                        PortStats {
                            out_frames: 3,
                            ..Default::default()
                        },
                    )],
                }],
            )],
        };
        let html = status_page(&view);
        for needle in [
            "&lt;lab&gt;",
            "PC1",
            "started",
            "2000",
            "UDP 10000",
            "127.0.0.1:10001",
            "3 / 0 B out",
            "refresh",
        ] {
            assert!(html.contains(needle), "{needle}");
        }
        assert!(!html.contains("<lab>"));
    }

    #[test]
    fn pages_decode_and_refuse_what_they_do_not_serve() {
        assert_eq!(
            decode(&req("GET / HTTP/1.1\r\n\r\n"), None).command,
            Ok(Command::Status)
        );
        let d = decode(&req("DELETE /upload HTTP/1.1\r\n\r\n"), None);
        assert_eq!(d.command.unwrap_err().status(), 405);
        let e = decode(&req("GET /nothing HTTP/1.1\r\n\r\n"), None)
            .command
            .unwrap_err();
        assert!(e.to_string().contains("start with /v1/"));
        let body = "--b\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nIOU\r\n--b--\r\n";
        let raw = format!(
            "POST /upload HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(decode(&req(&raw), None).command.unwrap_err().status(), 403);
    }
}
