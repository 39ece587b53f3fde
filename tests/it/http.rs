//! The HTTP/1.1 engine over real TCP.

use crate::util::{Server, read_response};
use std::io::{BufReader, Read, Write};
use std::time::Duration;

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let srv = Server::start(&[]);
    let s = srv.connect();
    let mut r = BufReader::new(s.try_clone().unwrap());
    for _ in 0..3 {
        (&s).write_all(b"GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let resp = read_response(&mut r).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.json["version"], "1.3.13");
        assert_eq!(resp.header("X-Route"), Some("/v1/version"));
        assert_eq!(resp.header("Content-Type"), Some("application/json"));
        assert!(resp.header("Server").unwrap().starts_with("nanolab/"));
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let srv = Server::start(&[]);
    let s = srv.connect();
    let mut batch = Vec::new();
    for i in 0..20 {
        let path = if i % 2 == 0 {
            "/v1/version"
        } else {
            "/v1/nope"
        };
        batch.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    (&s).write_all(&batch).unwrap();
    let mut r = BufReader::new(s);
    for i in 0..20 {
        let resp = read_response(&mut r).unwrap();
        assert_eq!(
            resp.status,
            if i % 2 == 0 { 200 } else { 404 },
            "answer {i}"
        );
    }
}

#[test]
fn chunked_body_and_expect_continue() {
    let srv = Server::start(&[]);
    let s = srv.connect();
    (&s).write_all(b"POST /v1/projects HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"name\r\n9\r\n\": \"ch\"}\r\n0\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let resp = read_response(&mut r).unwrap();
    assert_eq!(
        (resp.status, resp.json["name"].as_str()),
        (201, Some("ch")),
        "{}",
        resp.text
    );

    (&s).write_all(
        b"POST /v1/projects HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 15\r\n\r\n",
    )
    .unwrap();
    let cont = read_response(&mut r).unwrap();
    assert_eq!(cont.status, 100);
    (&s).write_all(b"{\"name\": \"ex\"}\n").unwrap();
    let resp = read_response(&mut r).unwrap();
    assert_eq!((resp.status, resp.json["name"].as_str()), (201, Some("ex")));
}

#[test]
fn http10_gets_connection_close() {
    let srv = Server::start(&[]);
    let mut s = srv.connect();
    s.write_all(b"GET /v1/version HTTP/1.0\r\n\r\n").unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert!(
        all.starts_with("HTTP/1.1 200 OK\r\n") && all.contains("Connection: close\r\n"),
        "{all}"
    );
}

#[test]
fn oversized_head_is_431_and_body_413_before_it_is_sent() {
    let srv = Server::start(&[]);
    let s = srv.connect();
    let mut head = b"GET /v1/version HTTP/1.1\r\nX-Big: ".to_vec();
    head.resize(40_000, b'a');
    let _ = (&s).write_all(&head);
    read_response(&mut BufReader::new(s))
        .unwrap()
        .assert_error(431, "16384");

    let s = srv.connect();
    (&s).write_all(b"POST /v1/projects HTTP/1.1\r\nContent-Length: 50000000\r\n\r\n")
        .unwrap();
    let resp = read_response(&mut BufReader::new(s)).unwrap();
    resp.assert_error(413, "50000000");
    assert_eq!(resp.header("Connection"), Some("close"));
}

#[test]
fn malformed_requests_get_400_and_the_connection_closes() {
    let srv = Server::start(&[]);
    for raw in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"GET /v1/version HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"GET /v1/version HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"POST /v1/projects HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
    ] {
        let mut s = srv.connect();
        s.write_all(raw).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let resp = read_response(&mut r).unwrap();
        resp.assert_error(400, "");
        let mut rest = Vec::new();
        assert_eq!(
            s.read_to_end(&mut rest).unwrap(),
            0,
            "connection must close"
        );
    }
    assert_eq!(srv.get("/v1/version").status, 200, "server still serves");
}

#[test]
fn a_half_sent_request_times_out_without_blocking_others() {
    let srv = Server::start(&[]);
    let mut slow = srv.connect();
    slow.write_all(b"GET /v1/version HTTP/1.1\r\nHost:")
        .unwrap();
    // Others are served meanwhile.
    for _ in 0..5 {
        assert_eq!(srv.get("/v1/version").status, 200);
    }
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let resp = read_response(&mut BufReader::new(slow)).unwrap();
    resp.assert_error(408, "in time");
}

#[test]
fn unknown_route_is_404_and_wrong_method_405_as_json() {
    let srv = Server::start(&[]);
    srv.get("/v1/nothing").assert_error(404, "/v1/nothing");
    let r = srv.req("DELETE", "/v1/version", "");
    r.assert_error(405, "DELETE");
    assert_eq!(r.header("X-Route"), Some("/v1/version"));
    srv.get("/v1/projects").assert_error(405, "GET");
}

#[test]
fn response_keys_are_sorted() {
    let srv = Server::start(&[]);
    let r = srv.post("/v1/projects", r#"{"name": "sorted"}"#);
    let keys: Vec<usize> = ["location", "name", "path", "project_id", "temporary"]
        .iter()
        .map(|k| r.text.find(&format!("\"{k}\"")).unwrap())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{}", r.text);
}

#[test]
fn typing_at_the_port_gets_a_400_at_once_and_json_ends_with_a_newline() {
    let s = Server::start(&[]);
    let mut c = s.connect();
    // What a person typing with telnet sends: a line, no blank line after.
    c.write_all(b"hello\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let r = read_response(&mut BufReader::new(c)).expect("an answer before the request timeout");
    r.assert_error(400, "This port speaks HTTP");
    let v = s.get("/v1/version");
    assert!(v.text.ends_with("}\n"), "{:?}", v.text);
}
