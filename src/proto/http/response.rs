//! Building responses (no I/O): status line, headers, and JSON bodies whose
//! keys are always sorted.

use crate::error::ApiError;
use serde_json::Value;

/// The product name and version sent in the `Server` header.
pub const SERVER: &str = concat!("nanolab/", env!("CARGO_PKG_VERSION"));

/// One answer, before serialization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// JSON body; empty for 204.
    pub body: Vec<u8>,
    /// Route template for `X-Route`, when a route matched.
    pub route: Option<&'static str>,
    /// Extra header lines, each without CRLF.
    pub extra: Vec<String>,
    /// The body's media type.
    pub content_type: &'static str,
    /// The body follows in chunks, fed by the connection's stream.
    pub chunked: bool,
}

impl Response {
    /// A JSON answer. `serde_json::Value` keeps object keys in a BTreeMap
    /// (the `preserve_order` feature is off), so the output is key-sorted.
    /// It ends with a newline, as a terminal (curl) wants.
    pub fn json(status: u16, value: &Value) -> Self {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_else(|_| b"{}".to_vec());
        body.push(b'\n');
        Self::json_body(status, body)
    }

    /// A JSON body made elsewhere (`/status.json`, written by serde's
    /// derive for speed; its keys are sorted by its field order).
    pub fn json_body(status: u16, body: Vec<u8>) -> Self {
        Response {
            status,
            body,
            route: None,
            extra: Vec::new(),
            content_type: "application/json",
            chunked: false,
        }
    }

    /// A 204 No Content.
    pub fn no_content() -> Self {
        Response {
            status: 204,
            body: Vec::new(),
            route: None,
            extra: Vec::new(),
            content_type: "application/json",
            chunked: false,
        }
    }

    /// An HTML page.
    pub fn html(status: u16, body: String) -> Self {
        Response {
            status,
            body: body.into_bytes(),
            route: None,
            extra: Vec::new(),
            content_type: "text/html; charset=utf-8",
            chunked: false,
        }
    }

    /// A 302 to `location`.
    pub fn redirect(location: &str) -> Self {
        Response {
            status: 302,
            body: Vec::new(),
            route: None,
            extra: vec![format!("Location: {location}")],
            content_type: "text/plain",
            chunked: false,
        }
    }

    /// A 200 whose body is streamed in chunks after the head.
    pub fn chunked(content_type: &'static str) -> Self {
        Response {
            status: 200,
            body: Vec::new(),
            route: None,
            extra: Vec::new(),
            content_type,
            chunked: true,
        }
    }

    /// A 101: the connection becomes a websocket (RFC 6455 handshake).
    pub fn switching(client_key: &str) -> Self {
        Response {
            status: 101,
            body: Vec::new(),
            route: None,
            extra: vec![
                "Upgrade: websocket".into(),
                "Connection: Upgrade".into(),
                format!(
                    "Sec-WebSocket-Accept: {}",
                    crate::proto::websocket::accept_key(client_key)
                ),
            ],
            content_type: "application/json",
            chunked: false,
        }
    }

    /// Raw bytes of some media type.
    pub fn bytes(status: u16, body: Vec<u8>, content_type: &'static str) -> Self {
        Response {
            status,
            body,
            route: None,
            extra: Vec::new(),
            content_type,
            chunked: false,
        }
    }

    /// The JSON answer for an error.
    pub fn error(err: &ApiError) -> Self {
        let mut r = Response::json(err.status(), &err.body());
        match err {
            ApiError::Unauthorized => r
                .extra
                .push("WWW-Authenticate: Basic realm=\"nanolab\"".into()),
            ApiError::MethodNotAllowed { allowed, .. } => r.extra.push(format!("Allow: {allowed}")),
            ApiError::UpgradeRequired(_) => r.extra.push("Sec-WebSocket-Version: 13".into()),
            _ => {}
        }
        r
    }

    /// Set the route template.
    pub fn with_route(mut self, route: Option<&'static str>) -> Self {
        self.route = route;
        self
    }

    /// Append the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>, close: bool) {
        use std::io::Write;
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nServer: {SERVER}\r\n",
            self.status,
            reason(self.status)
        );
        if self.chunked {
            let _ = write!(
                out,
                "Content-Type: {}\r\nTransfer-Encoding: chunked\r\n",
                self.content_type
            );
        } else if self.status != 204 && self.status != 101 {
            let _ = write!(
                out,
                "Content-Type: {}\r\nContent-Length: {}\r\n",
                self.content_type,
                self.body.len()
            );
        }
        if let Some(route) = self.route {
            let _ = write!(out, "X-Route: {route}\r\n");
        }
        for line in &self.extra {
            let _ = write!(out, "{line}\r\n");
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }
}

/// Reason phrase for the statuses the server uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        426 => "Upgrade Required",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_come_out_sorted() {
        let v = serde_json::json!({"zeta": 1, "alpha": {"b": 2, "a": 1}, "mid": [3]});
        let r = Response::json(200, &v);
        let text = String::from_utf8(r.body).unwrap();
        let (a, m, z) = (
            text.find("alpha").unwrap(),
            text.find("mid").unwrap(),
            text.find("zeta").unwrap(),
        );
        assert!(a < m && m < z, "{text}");
        assert!(text.find("\"a\"").unwrap() < text.find("\"b\"").unwrap());
    }

    #[test]
    fn wire_form_has_length_route_and_close() {
        let mut out = Vec::new();
        Response::json(201, &serde_json::json!({"udp_port": 10000}))
            .with_route(Some("/v1/projects/{project_id}/ports/udp"))
            .write_to(&mut out, true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 201 Created\r\n"));
        assert!(text.contains("Content-Type: application/json\r\n"));
        assert!(text.contains("X-Route: /v1/projects/{project_id}/ports/udp\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        assert!(text.contains(&format!("Content-Length: {}\r\n", body.len())));
    }

    #[test]
    fn no_content_has_no_body_headers() {
        let mut out = Vec::new();
        Response::no_content().write_to(&mut out, false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n") && text.ends_with("\r\n\r\n"));
        assert!(!text.contains("Content-Length"));
    }

    #[test]
    fn unauthorized_carries_the_challenge() {
        let mut out = Vec::new();
        Response::error(&ApiError::Unauthorized).write_to(&mut out, false);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("WWW-Authenticate: Basic realm=\"nanolab\"")
        );
    }
}
