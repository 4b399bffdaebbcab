//! The little HTTP/1.1 the CA service needs, over a blocking [`TcpStream`], with every
//! resource bounded: one request per connection (`Connection: close`), a head of at most
//! [`Limits::max_head`] bytes, a body of at most [`Limits::max_body`] bytes announced by
//! `Content-Length` (no chunked uploads), each read bounded by [`Limits::read_timeout`] and the
//! whole request by [`Limits::request_deadline`] (so a slow sender cannot hold a slot).
//!
//! ```text
//!  client                          read_request
//!  ── "POST /v1/sign HTTP/1.1" ──► request line: method, origin-form target, version
//!  ── headers ... CRLF CRLF ─────► ≤ max_head bytes, else 431
//!                                  Content-Length > max_body ⇒ 413 (body never read)
//!  ◄─ "100 Continue" ──────────── only if the client sent Expect: 100-continue
//!  ── body (Content-Length) ─────► ≤ max_body bytes, read under the deadline
//!  ◄─ response, Connection: close  write_response
//! ```

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::clock;

/// Resource limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request line plus headers, in bytes.
    pub max_head: usize,
    /// Largest body, in bytes.
    pub max_body: usize,
    /// Longest wait for any one read.
    pub read_timeout: Duration,
    /// Longest time from accept to the end of the body.
    pub request_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head: 8192,
            max_body: 16 * 1024,
            read_timeout: Duration::from_secs(10),
            request_deadline: Duration::from_secs(30),
        }
    }
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, as sent (methods are case-sensitive).
    pub method: String,
    /// The path, without any query string.
    pub path: String,
    /// Header names (lowercased) and values (trimmed), in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty without `Content-Length`).
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why no request could be read; each maps to the status to answer, if any.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The peer closed, reset, or went silent: nothing to answer.
    #[error("connection: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection before sending a byte (a probe): nothing to answer.
    #[error("connection closed before a request")]
    Empty,
    /// Malformed request line or header.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// Request line plus headers over the limit.
    #[error("request head larger than {0} bytes")]
    HeadTooLarge(usize),
    /// `Content-Length` over the limit.
    #[error("request body of {declared} bytes is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// What the client announced.
        declared: u64,
        /// The limit.
        limit: usize,
    },
    /// `Transfer-Encoding` (chunked) instead of `Content-Length`.
    #[error("send the body with Content-Length; Transfer-Encoding is not supported")]
    LengthRequired,
    /// An HTTP version other than 1.0 or 1.1.
    #[error("HTTP version not supported")]
    Version,
}

impl HttpError {
    /// The status to answer with, or `None` when the connection is beyond answering.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Io(_) | HttpError::Empty => None,
            HttpError::Malformed(_) => Some(400),
            HttpError::HeadTooLarge(_) => Some(431),
            HttpError::BodyTooLarge { .. } => Some(413),
            HttpError::LengthRequired => Some(411),
            HttpError::Version => Some(505),
        }
    }
}

/// A response; always sent with `Connection: close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type` of the body.
    pub content_type: &'static str,
    /// Extra headers (e.g. `Allow`, `WWW-Authenticate`).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A `text/plain` response whose body is `message` and a newline.
    pub fn text(status: u16, message: impl Into<String>) -> Self {
        let mut body = message.into().into_bytes();
        body.push(b'\n');
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// The reason phrase of the statuses this service sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Reads one request under `limits`; answers `Expect: 100-continue` itself.
pub fn read_request(stream: &mut TcpStream, limits: &Limits) -> Result<Request, HttpError> {
    let deadline = clock::monotonic() + limits.request_deadline;
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() > limits.max_head {
            return Err(HttpError::HeadTooLarge(limits.max_head));
        }
        let want = limits.max_head + 4 - buf.len();
        if read_some(stream, &mut buf, want.min(4096), deadline, limits)? == 0 {
            return Err(if buf.is_empty() {
                HttpError::Empty
            } else {
                HttpError::Malformed("connection closed inside the request head")
            });
        }
    };
    if head_end.head_len > limits.max_head {
        return Err(HttpError::HeadTooLarge(limits.max_head));
    }
    let head = std::str::from_utf8(&buf[..head_end.head_len])
        .map_err(|_| HttpError::Malformed("request head is not UTF-8"))?;
    let (method, path, headers) = parse_head(head)?;
    if headers.iter().any(|(n, _)| n == "transfer-encoding") {
        return Err(HttpError::LengthRequired);
    }
    let length = content_length(&headers)?;
    if length > limits.max_body as u64 {
        return Err(HttpError::BodyTooLarge {
            declared: length,
            limit: limits.max_body,
        });
    }
    let length = length as usize; // ≤ max_body
    let mut body = buf.split_off(head_end.body_start);
    if body.len() > length {
        // Pipelined bytes after the body: one request per connection, so they are dropped.
        body.truncate(length);
    }
    let expects_continue = headers
        .iter()
        .any(|(n, v)| n == "expect" && v.eq_ignore_ascii_case("100-continue"));
    if expects_continue && body.len() < length {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    while body.len() < length {
        let want = length - body.len();
        if read_some(stream, &mut body, want, deadline, limits)? == 0 {
            return Err(HttpError::Malformed("connection closed inside the body"));
        }
    }
    Ok(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Writes `response` with `Content-Length` and `Connection: close`.
pub fn write_response(w: &mut impl Write, response: &Response) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(&response.body)?;
    w.flush()
}

/// Where the head ends: its length up to the blank line, and where the body starts.
struct HeadEnd {
    head_len: usize,
    body_start: usize,
}

/// Finds the blank line ending the head (`\r\n\r\n`, or `\n\n` from lenient clients).
fn find_head_end(buf: &[u8]) -> Option<HeadEnd> {
    let mut i = 0;
    while let Some(off) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + off;
        let next = &buf[nl + 1..];
        if next.starts_with(b"\r\n") {
            return Some(HeadEnd {
                head_len: nl + 1,
                body_start: nl + 3,
            });
        }
        if next.starts_with(b"\n") {
            return Some(HeadEnd {
                head_len: nl + 1,
                body_start: nl + 2,
            });
        }
        i = nl + 1;
    }
    None
}

type Head = (String, String, Vec<(String, String)>);

fn parse_head(head: &str) -> Result<Head, HttpError> {
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed(
            "request line is not 'METHOD /path HTTP/1.1'",
        ));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(HttpError::Malformed("bad method"));
    }
    if !target.starts_with('/') {
        return Err(HttpError::Malformed("request target must be a path"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(if version.starts_with("HTTP/") {
            HttpError::Version
        } else {
            HttpError::Malformed("bad HTTP version")
        });
    }
    let path = target.split(['?', '#']).next().unwrap_or(target).to_owned();
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Malformed("header line without ':'"));
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HttpError::Malformed("bad header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok((method.to_owned(), path, headers))
}

/// The body length: absent means 0; repeated values must agree.
fn content_length(headers: &[(String, String)]) -> Result<u64, HttpError> {
    let mut length = None;
    for (_, v) in headers.iter().filter(|(n, _)| n == "content-length") {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HttpError::Malformed("bad Content-Length"));
        }
        let n = v.parse::<u64>().unwrap_or(u64::MAX);
        if length.is_some_and(|l| l != n) {
            return Err(HttpError::Malformed("conflicting Content-Length headers"));
        }
        length = Some(n);
    }
    Ok(length.unwrap_or(0))
}

/// One read of at most `want` bytes appended to `buf`, bounded by the read timeout and the
/// request deadline. Returns 0 at end of stream.
fn read_some(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    want: usize,
    deadline: Instant,
    limits: &Limits,
) -> Result<usize, HttpError> {
    let left = deadline.saturating_duration_since(clock::monotonic());
    if left.is_zero() {
        return Err(HttpError::Io(io::ErrorKind::TimedOut.into()));
    }
    stream.set_read_timeout(Some(left.min(limits.read_timeout)))?;
    let start = buf.len();
    buf.resize(start + want, 0);
    let n = loop {
        match stream.read(&mut buf[start..]) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                buf.truncate(start);
                return Err(HttpError::Io(e));
            }
        }
    };
    buf.truncate(start + n);
    Ok(n)
}

#[cfg(test)]
mod tests;
