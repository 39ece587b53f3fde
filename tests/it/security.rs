//! Authentication and the warnings around it.

use crate::util::{Server, temp_dir};
use std::process::Command;

#[test]
fn basic_auth_from_the_config_file() {
    let dir = temp_dir("auth");
    let ini = dir.join("auth.ini");
    std::fs::write(
        &ini,
        "[Server]\nauth = True\nuser = admin\npassword = s3cret\n",
    )
    .unwrap();
    let srv = Server::start(&["--config", ini.to_str().unwrap()]);
    let r = srv.get("/v1/version");
    r.assert_error(401, "Authentication required");
    // The pages outside /v1 obey it too.
    srv.get("/").assert_error(401, "Authentication required");
    srv.get("/backup/projects.tar")
        .assert_error(401, "Authentication required");
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"nanolab\"")
    );
    let with = |auth: &str| {
        let mut s = srv.connect();
        use std::io::Write;
        write!(
            s,
            "GET /v1/version HTTP/1.1\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        crate::util::read_response(&mut std::io::BufReader::new(s))
            .unwrap()
            .status
    };
    assert_eq!(with("Basic YWRtaW46czNjcmV0"), 200);
    assert_eq!(with("Basic YWRtaW46d3Jvbmc="), 401);
    assert_eq!(with("Basic garbage!"), 401);
    let out = Command::new("curl")
        .args(["-s", "-u", "admin:s3cret", &srv.url("/v1/version")])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("1.3.13"));
}

#[test]
fn basic_auth_from_flags_with_the_password_in_the_environment() {
    let srv = Server::start_env(&["--auth-user", "lab"], &[("NANOLAB_AUTH_PASSWORD", "pw")]);
    srv.get("/v1/version").assert_error(401, "");
    let out = Command::new("curl")
        .args(["-s", "-u", "lab:pw", &srv.url("/v1/version")])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("1.3.13"));
    let out = Command::new(env!("CARGO_BIN_EXE_nanolab"))
        .args(["--auth-user", "lab"])
        .env_remove("NANOLAB_AUTH_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a user without a password source is refused"
    );
}

#[test]
fn listening_beyond_loopback_without_auth_is_warned_about() {
    let srv = Server::start(&["--host", "0.0.0.0"]);
    assert_eq!(srv.get("/v1/version").status, 200);
    assert!(
        srv.log().contains("without authentication"),
        "{}",
        srv.log()
    );
    let quiet = Server::start(&[]);
    assert!(!quiet.log().contains("without authentication"));
}

#[test]
fn consoles_bind_loopback_unless_remote_consoles_are_allowed() {
    // 127.0.0.2 is another local address: a console bound to 127.0.0.1 only
    // refuses it, one bound to every address accepts it.
    let srv = Server::start(&[]);
    let p = srv.project();
    let (_, port) = srv.vm(&p, "PC");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(std::net::TcpStream::connect(("127.0.0.2", port)).is_err());
    let open = Server::start(&["--allow-remote-console"]);
    let p = open.project();
    let (_, port) = open.vm(&p, "PC");
    assert!(std::net::TcpStream::connect(("127.0.0.2", port)).is_ok());
}
