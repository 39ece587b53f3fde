//! QMP, the QEMU Machine Protocol, client side (sans-IO): one JSON object
//! per line each way. QEMU opens with a greeting; the client answers with
//! `qmp_capabilities` and then sends commands, each with an `id` its reply
//! carries back; asynchronous events (`STOP`, `RESUME`, `RESET`,
//! `SHUTDOWN`...) come in between.

use serde_json::{Value, json};

/// The longest line kept while waiting for its end: QMP replies to the
/// commands nanolab sends are short; a longer line is dropped whole.
const MAX_LINE: usize = 64 * 1024;

/// One message from QEMU.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// The greeting: QEMU is up and waits for `qmp_capabilities`.
    Greeting,
    /// The reply to command `id`: its `return` value, or the error's
    /// description.
    Reply {
        /// The id the command was sent with.
        id: u64,
        /// `Ok(return)` or `Err(desc)`.
        result: Result<Value, String>,
    },
    /// An event, by name, with its data (`{}` when it has none).
    Event {
        /// `STOP`, `RESUME`, `RESET`, `SHUTDOWN`, `POWERDOWN`...
        name: String,
        /// The event's `data`.
        data: Value,
    },
}

/// A QMP reader: bytes in, messages out.
#[derive(Debug, Default)]
pub struct Reader {
    line: Vec<u8>,
    /// Dropping the rest of a line that grew past [`MAX_LINE`].
    skipping: bool,
}

impl Reader {
    /// Take `data` as it came from the socket; the whole messages in it.
    pub fn receive(&mut self, data: &[u8]) -> Vec<Message> {
        let mut out = Vec::new();
        for &b in data {
            if b == b'\n' {
                if !std::mem::take(&mut self.skipping)
                    && let Some(m) = parse(&self.line)
                {
                    out.push(m);
                }
                self.line.clear();
            } else if !self.skipping {
                if self.line.len() == MAX_LINE {
                    self.line.clear();
                    self.skipping = true;
                } else {
                    self.line.push(b);
                }
            }
        }
        out
    }
}

/// One line as a message; `None` for what is not one.
fn parse(line: &[u8]) -> Option<Message> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let o = v.as_object()?;
    if o.contains_key("QMP") {
        return Some(Message::Greeting);
    }
    if let Some(name) = o.get("event").and_then(Value::as_str) {
        let data = o.get("data").cloned().unwrap_or_else(|| json!({}));
        return Some(Message::Event {
            name: name.to_string(),
            data,
        });
    }
    let id = o.get("id")?.as_u64()?;
    let result = match (o.get("return"), o.get("error")) {
        (Some(r), _) => Ok(r.clone()),
        (None, Some(e)) => Err(e
            .get("desc")
            .and_then(Value::as_str)
            .unwrap_or("an error without a description")
            .to_string()),
        (None, None) => return None,
    };
    Some(Message::Reply { id, result })
}

/// A command line: `execute` with its `arguments` (none when `null`) and
/// the `id` its reply will carry.
pub fn command(id: u64, execute: &str, arguments: Value) -> Vec<u8> {
    let mut c = json!({"execute": execute, "id": id});
    if !arguments.is_null() {
        c["arguments"] = arguments;
    }
    let mut line = c.to_string().into_bytes();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_in_pieces() {
        let mut r = Reader::default();
        let greeting = br#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "Debian"}, "capabilities": ["oob"]}}"#;
        let mut wire = greeting.to_vec();
        wire.extend_from_slice(b"\r\n{\"return\": {}, \"id\": 1}\r\n");
        wire.extend_from_slice(
            br#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#,
        );
        wire.extend_from_slice(
            b"\n{\"id\": 2, \"return\": {\"status\": \"paused\", \"running\": false}}\n",
        );
        wire.extend_from_slice(
            b"{\"id\": 3, \"error\": {\"class\": \"GenericError\", \"desc\": \"no such link\"}}\n",
        );
        let mut got = Vec::new();
        for piece in wire.chunks(7) {
            got.extend(r.receive(piece));
        }
        assert_eq!(
            got,
            vec![
                Message::Greeting,
                Message::Reply {
                    id: 1,
                    result: Ok(json!({}))
                },
                Message::Event {
                    name: "STOP".into(),
                    data: json!({})
                },
                Message::Reply {
                    id: 2,
                    result: Ok(json!({"status": "paused", "running": false}))
                },
                Message::Reply {
                    id: 3,
                    result: Err("no such link".into())
                },
            ]
        );
    }

    #[test]
    fn junk_and_long_lines_are_dropped() {
        let mut r = Reader::default();
        assert!(r.receive(b"not json\n[1, 2]\n{\"id\": \"x\"}\n").is_empty());
        let long = vec![b'a'; MAX_LINE + 10];
        assert!(r.receive(&long).is_empty());
        assert!(
            r.receive(b"\n").is_empty(),
            "the long line is dropped whole"
        );
        assert_eq!(
            r.receive(b"{\"event\": \"RESET\", \"data\": {\"guest\": true}}\n"),
            vec![Message::Event {
                name: "RESET".into(),
                data: json!({"guest": true})
            }]
        );
    }

    #[test]
    fn commands_are_lines() {
        assert_eq!(
            command(4, "set_link", json!({"name": "gns3-0", "up": false})),
            b"{\"arguments\":{\"name\":\"gns3-0\",\"up\":false},\"execute\":\"set_link\",\"id\":4}\n"
        );
        assert_eq!(
            command(1, "qmp_capabilities", Value::Null),
            b"{\"execute\":\"qmp_capabilities\",\"id\":1}\n"
        );
    }
}
