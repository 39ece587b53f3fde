//! `--record`: every API request as a line of shell that replays it on a
//! fresh server (no I/O: the reactor writes the lines).
//!
//! An id the server chose (a project, a node, a UDP port) differs on
//! the next server, so a recording that kept the ids would fail from its
//! second line on. Instead each answer that brings a new id captures it in
//! a shell variable, as the README's session does
//! (`P1=$(curl -s ... | sed -n 's/.*"project_id": "\([^"]*\)".*/\1/p')`),
//! and every later request names the variable (`.../projects/$P1/...`).
//! Lines are written in the order the requests came, once each is
//! answered (the answer decides whether the line captures). The server is
//! `$NANOLAB`, set by the file's first line to the recording server unless
//! given: `NANOLAB=http://other:8000 sh session.sh` replays elsewhere.

use super::Ticket;
use crate::proto::http::parse::Request;
use std::collections::VecDeque;

/// The answer keys that carry an id the server may choose, the prefix of
/// their variables, and whether the value is quoted in JSON.
const KEYS: &[(&str, &str, bool)] = &[
    ("project_id", "P", true),
    ("vm_id", "N", true),
    ("node_id", "N", true),
    ("device_id", "N", true),
    ("udp_port", "U", false),
];

/// Requests waiting for their answer, and the ids captured so far.
#[derive(Debug)]
pub struct Recorder {
    addr: std::net::SocketAddr,
    pending: VecDeque<(Ticket, String, Option<String>)>,
    /// (id as the server wrote it, variable name), longest id first when
    /// substituting.
    vars: Vec<(String, String)>,
    made: usize,
    started: bool,
}

impl Recorder {
    /// A recorder of requests to the server at `addr`.
    pub fn new(addr: std::net::SocketAddr) -> Recorder {
        Recorder {
            addr,
            pending: VecDeque::new(),
            vars: Vec::new(),
            made: 0,
            started: false,
        }
    }

    /// A request came: its line, with the ids known so far as variables.
    pub fn request(&mut self, ticket: Ticket, req: &Request) {
        let path = self.substitute(&req.path, false);
        let body = String::from_utf8_lossy(&req.body).replace('\'', "'\\''");
        let body = self.substitute(&body, true);
        let line = format!(
            "curl -s -X {} \"$NANOLAB{path}\" -d '{}'",
            req.method.as_str(),
            if body.is_empty() { "{}" } else { &body }
        );
        self.pending.push_back((ticket, line, None));
    }

    /// Its answer came (`status`, `body` as sent): the lines now ready, in
    /// request order.
    pub fn answered(&mut self, ticket: Ticket, status: u16, body: &[u8]) -> String {
        let captured = if status < 300 {
            self.capture(body)
        } else {
            None
        };
        if let Some(entry) = self.pending.iter_mut().find(|(t, ..)| *t == ticket) {
            let line = std::mem::take(&mut entry.1);
            entry.2 = Some(match captured {
                Some((var, key, quoted)) => {
                    let value = if quoted {
                        "\"\\([^\"]*\\)\""
                    } else {
                        "\\([0-9]*\\)"
                    };
                    format!("{var}=$({line} | sed -n 's/.*\"{key}\": {value}.*/\\1/p')\n")
                }
                None => format!("{line}\n"),
            });
        }
        let mut out = String::new();
        if !self.started && self.pending.front().is_some_and(|(_, _, l)| l.is_some()) {
            self.started = true;
            out.push_str(&format!(": \"${{NANOLAB:=http://{}}}\"\n", self.addr));
        }
        while let Some((_, _, Some(_))) = self.pending.front() {
            if let Some((_, _, Some(line))) = self.pending.pop_front() {
                out.push_str(&line);
            }
        }
        out
    }

    /// The first new id in an answer: its variable, key and quoting.
    fn capture(&mut self, body: &[u8]) -> Option<(String, &'static str, bool)> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        for &(key, prefix, quoted) in KEYS {
            let id = match &v[key] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => continue,
            };
            if self.vars.iter().any(|(known, _)| *known == id) {
                continue;
            }
            self.made += 1;
            let var = format!("{prefix}{}", self.made);
            self.vars.push((id, var.clone()));
            self.vars.sort_by_key(|(id, _)| std::cmp::Reverse(id.len()));
            return Some((var, key, quoted));
        }
        None
    }

    /// `text` with every known id replaced by its variable: `$P1` in a
    /// path, `'"$P1"'` inside a single-quoted body.
    fn substitute(&self, text: &str, quoted: bool) -> String {
        let mut out = text.to_string();
        for (id, var) in &self.vars {
            // A port is a number: only whole numbers after a key.
            if id.bytes().all(|b| b.is_ascii_digit()) {
                if !quoted {
                    continue;
                }
                for sep in [": ", ":"] {
                    for key in ["\"lport\"", "\"rport\"", "\"udp_port\""] {
                        let from = format!("{key}{sep}{id}");
                        let to = format!("{key}{sep}'\"${var}\"'");
                        out = replace_whole(&out, &from, &to);
                    }
                }
                continue;
            }
            let to = if quoted {
                format!("'\"${var}\"'")
            } else {
                format!("${var}")
            };
            out = out.replace(id.as_str(), &to);
        }
        out
    }
}

/// Replace `from` where the next character is not a digit.
fn replace_whole(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(from) {
        let after = &rest[i + from.len()..];
        out.push_str(&rest[..i]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::parse::test_request;

    fn t(slot: u64) -> Ticket {
        Ticket {
            conn: 1,
            serial: 1,
            slot,
        }
    }

    #[test]
    fn ids_the_server_chose_become_variables_in_request_order() {
        let mut r = Recorder::new("127.0.0.1:8000".parse().unwrap());
        r.request(
            t(1),
            &test_request("POST", "/v1/projects", "", r#"{"name": "it's"}"#),
        );
        let line = r.answered(t(1), 201, b"{\n  \"project_id\": \"aaaa-1\"\n}");
        assert_eq!(
            line,
            ": \"${NANOLAB:=http://127.0.0.1:8000}\"\n\
             P1=$(curl -s -X POST \"$NANOLAB/v1/projects\" -d '{\"name\": \"it'\\''s\"}' \
             | sed -n 's/.*\"project_id\": \"\\([^\"]*\\)\".*/\\1/p')\n"
        );
        r.request(
            t(2),
            &test_request("POST", "/v1/projects/aaaa-1/ports/udp", "", ""),
        );
        // A start that waits, then a quick GET: lines keep the request order.
        r.request(
            t(3),
            &test_request("POST", "/v1/projects/aaaa-1/vpcs/vms/x/start", "", ""),
        );
        r.request(t(4), &test_request("GET", "/v1/version", "", ""));
        assert_eq!(
            r.answered(t(4), 200, b"{}"),
            "",
            "waits for the earlier ones"
        );
        let two = r.answered(t(2), 201, b"{\"udp_port\": 10000}");
        assert!(
            two.starts_with("U2=$(curl -s -X POST \"$NANOLAB/v1/projects/$P1/ports/udp\""),
            "{two}"
        );
        assert!(two.contains("\"udp_port\": \\([0-9]*\\)"), "{two}");
        let rest = r.answered(t(3), 204, b"");
        assert_eq!(rest.lines().count(), 2, "{rest}");
        assert!(
            rest.ends_with("\"$NANOLAB/v1/version\" -d '{}'\n"),
            "{rest}"
        );
        let nio = r#"{"lport": 10000, "rhost": "127.0.0.1", "rport": 100001, "type": "nio_udp"}"#;
        r.request(
            t(5),
            &test_request("POST", "/v1/projects/aaaa-1/x", "", nio),
        );
        let line = r.answered(t(5), 409, b"{\"project_id\": \"bbbb\"}");
        assert!(line.contains("\"lport\": '\"$U2\"', "), "{line}");
        assert!(
            line.contains("\"rport\": 100001"),
            "a longer number is left: {line}"
        );
        assert!(
            !line.contains("bbbb") && !line.starts_with("P"),
            "an error captures nothing: {line}"
        );
    }
}
