//! `multipart/form-data` bodies (RFC 7578), as a browser's form or
//! `curl -F` sends them (no I/O).
//!
//! Written here rather than taken from a crate: the maintained ones are
//! built for async runtimes, and a whole body in memory needs only this:
//! find the boundary, split on it, read each part's `Content-Disposition`.

use crate::error::ApiError;

/// One field of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// The field's name.
    pub name: String,
    /// The file name, for a file field.
    pub filename: Option<String>,
    /// The field's bytes.
    pub data: &'a [u8],
}

/// The boundary named by a `Content-Type: multipart/form-data` value.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    param(params, "boundary").filter(|b| !b.is_empty() && b.len() <= 70)
}

/// A `key=value` or `key="value"` parameter of a header value.
fn param(params: &str, key: &str) -> Option<String> {
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Where `needle` first occurs in `hay` (memchr's substring search: an
/// upload is up to 16 MiB, and a byte-by-byte scan held the loop).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

fn bad(why: &str) -> ApiError {
    ApiError::bad(format!("Malformed multipart/form-data body: {why}"))
}

/// Split a form body into its fields.
pub fn parse<'a>(content_type: &str, body: &'a [u8]) -> Result<Vec<Part<'a>>, ApiError> {
    let boundary = boundary(content_type).ok_or_else(|| {
        ApiError::bad(
            "Uploads are multipart/form-data with a boundary (a browser form, or curl -F type=PROJECTS -F file=@projects.tar)",
        )
    })?;
    let delimiter = format!("--{boundary}");
    let start = find(body, delimiter.as_bytes()).ok_or_else(|| bad("no boundary"))?;
    let mut rest = &body[start + delimiter.len()..];
    let next = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or_else(|| bad("no line after a boundary"))?;
        let head_end = find(rest, b"\r\n\r\n").ok_or_else(|| bad("a part without headers"))?;
        let head = std::str::from_utf8(&rest[..head_end]).map_err(|_| bad("headers not UTF-8"))?;
        let data_and_more = &rest[head_end + 4..];
        let end = find(data_and_more, next.as_bytes()).ok_or_else(|| bad("no closing boundary"))?;
        let disposition = head
            .split("\r\n")
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-disposition")
                    .then_some(v)
            })
            .ok_or_else(|| bad("a part without Content-Disposition"))?;
        parts.push(Part {
            name: param(disposition, "name").ok_or_else(|| bad("a part without a name"))?,
            filename: param(disposition, "filename"),
            data: &data_and_more[..end],
        });
        rest = &data_and_more[end + next.len()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=----x1";

    #[test]
    fn a_form_as_curl_sends_it() {
        let body = b"------x1\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nPROJECTS\r\n------x1\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.tar\"\r\nContent-Type: application/octet-stream\r\n\r\nab\r\n--cd\r\n------x1--\r\n";
        let parts = parse(CT, body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data),
            ("type", &b"PROJECTS"[..])
        );
        assert_eq!(parts[1].filename.as_deref(), Some("p.tar"));
        assert_eq!(
            parts[1].data, b"ab\r\n--cd",
            "data may hold CRLF and dashes"
        );
    }

    #[test]
    fn broken_forms_are_400s_that_say_why() {
        for body in [
            &b"nothing"[..],
            b"------x1\r\nno headers",
            b"------x1\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
        ] {
            let e = parse(CT, body).unwrap_err();
            assert_eq!(e.status(), 400);
        }
        assert!(
            parse("application/json", b"{}")
                .unwrap_err()
                .to_string()
                .contains("curl -F")
        );
        assert_eq!(
            boundary("multipart/form-data; boundary=\"q\""),
            Some("q".into())
        );
    }
}
