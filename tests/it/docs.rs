//! Every `curl` line of `docs/API.md` names a route the server serves,
//! with a method it accepts: each is sent (ids made up, bodies left out)
//! to a real server, and no answer may be "no such route" or a 405. The
//! examples' own outcomes need the lab of their section; this catches a
//! route that was renamed, mistyped or never served.

use crate::util::Server;

/// The method and path of an example line, `$B`/`$C` expanded for the
/// section it is in; `None` for lines that are not an HTTP example here.
fn request(line: &str, v3: bool) -> Option<(String, String)> {
    let at = line.find("curl ")?;
    let words = shell_words(&line[at..]);
    let mut method = None;
    let mut body = false;
    let mut url = None;
    let mut i = 1;
    while i < words.len() {
        let w = &words[i];
        match w.as_str() {
            "-X" => {
                method = words.get(i + 1).cloned();
                i += 1;
            }
            "-d" | "-F" | "--data-binary" | "-T" => {
                body = true;
                i += 1;
            }
            "-o" | "-u" | "-w" | "--cacert" | "-H" => i += 1,
            "|" | "#" => break,
            _ if w.contains("http://") || w.starts_with("$B") || w.starts_with("$C") => {
                url = Some(w.clone());
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let url = url?;
    let c = if v3 { "/v3/compute" } else { "/v2/compute" };
    let url = url.replace("$B", "/v1").replace("$C", c);
    let path = match url.find("://") {
        Some(p) => url[p + 3..]
            .find('/')
            .map(|s| url[p + 3 + s..].to_string())?,
        None => url,
    };
    let method = method.unwrap_or_else(|| if body { "POST" } else { "GET" }.into());
    Some((method, made_up(&path)))
}

/// Split a shell line into words, honouring quotes (enough for the docs).
fn shell_words(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote) = (Vec::new(), String::new(), None);
    for ch in s.chars() {
        match (quote, ch) {
            (None, '\'' | '"') => quote = Some(ch),
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Shell variables as ids: a UUID for an object, a port for `$U…`.
fn made_up(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let name: String = rest[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        out.push_str(if name.starts_with('U') {
            "20000"
        } else {
            "5d176242-567e-4b2d-9a6f-0a1b2c3d4e5f"
        });
        rest = &rest[i + 1 + name.len()..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_curl_line_of_the_api_docs_names_a_served_route() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md")).unwrap();
    let s = Server::start(&[]);
    let (mut v3, mut in_sh, mut seen) = (false, false, 0);
    let mut wrong = Vec::new();
    for line in doc.lines() {
        if line.starts_with("## ") {
            v3 = line.contains("3.0 compute API");
        }
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh || line.contains("https://") || line.starts_with('#') {
            continue;
        }
        let Some((method, path)) = request(line, v3) else {
            continue;
        };
        seen += 1;
        let r = s.req(&method, &path, "");
        let msg = r.json["message"].as_str().unwrap_or("");
        let no_route = r.status == 405
            || msg.contains("doesn't exist on this compute")
            || msg.starts_with("Route ")
            || msg.contains("has no such route")
            || msg.contains("not found: the route accepts");
        if no_route {
            wrong.push(format!(
                "{method} {path}: {} {msg}\n  from: {line}",
                r.status
            ));
        }
    }
    assert!(seen > 80, "only {seen} example lines found");
    assert!(
        wrong.is_empty(),
        "{} example(s) name no served route:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
