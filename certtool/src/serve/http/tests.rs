use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use super::*;

/// Sends `bytes` from a client socket (then half-closes) and reads one request on the server side.
fn exchange(bytes: &'static [u8], limits: Limits) -> (Result<Request, HttpError>, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("invariant: loopback bind");
    let addr = listener.local_addr().expect("invariant: bound");
    let client = thread::spawn(move || {
        let mut c = TcpStream::connect(addr).expect("invariant: loopback connect");
        let _ = c.write_all(bytes);
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        got
    });
    let (mut s, _) = listener.accept().expect("invariant: accept");
    let result = read_request(&mut s, &limits);
    drop(s);
    (result, client.join().unwrap_or_default())
}

#[test]
fn reads_a_post_with_body_and_ignores_the_query() {
    let (r, _) = exchange(
        b"POST /v1/sign?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nAuthorization: Bearer t\r\n\r\nhello",
        Limits::default(),
    );
    let r = r.expect("request");
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/sign");
    assert_eq!(r.header("authorization"), Some("Bearer t"));
    assert_eq!(r.body, b"hello");
}

#[test]
fn accepts_bare_lf_and_no_body() {
    let (r, _) = exchange(b"GET /v1/ca HTTP/1.0\nHost: a\n\n", Limits::default());
    let r = r.expect("request");
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/v1/ca"));
    assert!(r.body.is_empty());
}

#[test]
fn refuses_an_oversized_body_before_reading_it() {
    let limits = Limits {
        max_body: 4,
        ..Limits::default()
    };
    let (r, _) = exchange(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", limits);
    assert!(matches!(
        r,
        Err(HttpError::BodyTooLarge {
            declared: 5,
            limit: 4
        })
    ));
}

#[test]
fn refuses_an_oversized_head() {
    let limits = Limits {
        max_head: 32,
        ..Limits::default()
    };
    let (r, _) = exchange(
        b"GET / HTTP/1.1\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
        limits,
    );
    assert_eq!(r.err().and_then(|e| e.status()), Some(431));
}

#[test]
fn answers_100_continue_before_the_body_is_sent() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("invariant: loopback bind");
    let addr = listener.local_addr().expect("invariant: bound");
    let client = thread::spawn(move || {
        let mut c = TcpStream::connect(addr).expect("invariant: loopback connect");
        c.write_all(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
            .expect("write head");
        let mut interim = [0u8; 25];
        c.read_exact(&mut interim).expect("read 100 Continue");
        c.write_all(b"ok").expect("write body");
        interim
    });
    let (mut s, _) = listener.accept().expect("invariant: accept");
    let r = read_request(&mut s, &Limits::default());
    assert_eq!(r.expect("request").body, b"ok");
    assert_eq!(
        &client.join().expect("client"),
        b"HTTP/1.1 100 Continue\r\n\r\n"
    );
}

#[test]
fn maps_malformed_requests_to_statuses() {
    let cases: [(&'static [u8], Option<u16>); 8] = [
        (b"", None),
        (b"GARBAGE\r\n\r\n", Some(400)),
        (b"GET http://x/ HTTP/1.1\r\n\r\n", Some(400)),
        (b"GET / HTTP/2.0\r\n\r\n", Some(505)),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            Some(411),
        ),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            Some(400),
        ),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", Some(400)),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nshort",
            Some(400),
        ),
    ];
    for (bytes, status) in cases {
        let (r, _) = exchange(bytes, Limits::default());
        let e = r.err();
        assert!(e.is_some(), "{:?}", String::from_utf8_lossy(bytes));
        assert_eq!(
            e.and_then(|e| e.status()),
            status,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn writes_a_complete_response() {
    let mut out = Vec::new();
    let resp = Response::text(405, "use POST").with_header("Allow", "POST");
    write_response(&mut out, &resp).expect("write to Vec");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 9\r\nConnection: close\r\nAllow: POST\r\n\r\nuse POST\n"
    );
}
