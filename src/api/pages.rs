//! The pages for people, outside `/v1` (no I/O): a status page of the whole
//! lab (`GET /`), the upload form and the restore of a projects archive
//! (`/upload`, as GNS3 1.3.13 has them), and the projects backup
//! (`GET /backup/projects.tar`, streamed by the reactor).

use super::answer::{Answer, Body, Reply};
use super::command::Command;
use super::multipart;
use super::v1::Decoded;
use crate::error::ApiError;
use crate::proto::http::auth::Credentials;
use crate::proto::http::parse::{Method, Request};
use crate::proto::http::response::Response;

/// The pages: (path, methods).
const PAGES: &[(&str, &[Method])] = &[
    ("/", &[Method::Get]),
    ("/status.json", &[Method::Get]),
    ("/projects/{project_id}", &[Method::Get]),
    ("/projects/{project_id}/open", &[Method::Post]),
    ("/upload", &[Method::Get, Method::Post]),
    ("/backup/projects.tar", &[Method::Get]),
    ("/backup/images.tar", &[Method::Get]),
];

/// Decode a request for a page.
pub fn decode(req: &Request, auth: Option<&Credentials>) -> Decoded {
    if auth.is_some_and(|c| !c.accepts(req.authorization.as_deref())) {
        return Decoded {
            route: None,
            command: Err(ApiError::Unauthorized),
        };
    }
    let (project, path) = match req.path.strip_prefix("/projects/") {
        Some(rest) => match rest.strip_suffix("/open") {
            Some(id) => (Some(id), "/projects/{project_id}/open"),
            None => (Some(rest), "/projects/{project_id}"),
        },
        None => (None, req.path.as_str()),
    };
    let project_id = || {
        project
            .unwrap_or_default()
            .parse::<uuid::Uuid>()
            .map_err(|_| ApiError::NotFound(format!("Project {} is not a project id", req.path)))
    };
    let Some(&(route, methods)) = PAGES.iter().find(|(p, _)| *p == path) else {
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
        ("/" | "/status.json", Method::Get) => Ok(Command::Status(None)),
        ("/projects/{project_id}", Method::Get) => project_id().map(|id| Command::Status(Some(id))),
        ("/projects/{project_id}/open", Method::Post) => project_id().map(|id| {
            Command::CreateProject(super::body::ProjectCreate {
                project_id: Some(id),
                ..Default::default()
            })
        }),
        ("/upload", Method::Get) => Ok(Command::UploadForm),
        ("/upload", Method::Post) => restore(req),
        ("/backup/projects.tar", Method::Get) => Ok(Command::BackupProjects),
        ("/backup/images.tar", Method::Get) => Ok(Command::BackupImages),
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
        Ok(Answer::Ok(Body::Status(s))) if route == Some("/status.json") => {
            Response::json_body(200, super::status::json(&s))
        }
        Ok(Answer::Ok(Body::Status(s))) => Response::html(200, super::status::page(&s)),
        Ok(Answer::Ok(Body::Backup(_))) => Response::chunked("application/x-gtar"),
        Ok(Answer::Created(Body::Restored(r))) => Response::html(200, restored_page(&r)),
        Ok(Answer::Created(Body::Project(p))) => Response::redirect(&format!("/projects/{}", p.id)),
        Ok(_) => Response::html(200, UPLOAD_FORM.to_string()),
        Err(e) => Response::error(&e),
    }
    .with_route(route)
}

/// The form again, under what the restore wrote.
fn restored_page(r: &super::answer::Restored) -> String {
    let said = format!(
        "<p class=\"restored\"><strong>Restored {} project(s): {} file(s), {} bytes.</strong> \
         <a href=\"/\">See the lab</a></p>",
        r.projects, r.files, r.bytes
    );
    UPLOAD_FORM.replacen(
        "<body><h1>Restore projects</h1>",
        &format!("<body><h1>Restore projects</h1>{said}"),
        1,
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::http::parse::RequestParser;

    fn req(raw: &str) -> Request {
        RequestParser::new()
            .feed(raw.as_bytes())
            .unwrap()
            .request
            .unwrap()
    }

    #[test]
    fn pages_decode_and_refuse_what_they_do_not_serve() {
        assert_eq!(
            decode(&req("GET / HTTP/1.1\r\n\r\n"), None).command,
            Ok(Command::Status(None))
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
