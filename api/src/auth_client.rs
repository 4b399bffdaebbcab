//! The CA service client behind `InitAuthentication`: one background thread per instance,
//! started on first use, that posts our certificate request to `sockworks-cert serve`
//! (`POST /v1/sign`, `Authorization: Bearer`), installs the certificate it returns, and
//! renews it at two thirds of its lifetime.
//!
//! ```text
//!  init_authentication ─► Worker::request ─► thread: build request ─► POST (bounded) ─► install
//!                                              ▲                                        │
//!                                              └──── wait until renewal (2/3 lifetime) ◄┘
//! ```
//!
//! One request at a time; every request is bounded by [`CaClientConfig::timeout`] (connect,
//! each read and write, and the whole exchange) and by [`MAX_RESPONSE`] bytes. Only plain
//! `http://` (a CA service on a trusted network or behind a TLS proxy on localhost). The thread
//! holds the instance weakly: it ends when the instance does.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use sockworks_engine::shard::Clock;

use crate::auth::{self, fetch_request};
use crate::auth_config::{AuthStatus, Availability, CaClientConfig};
use crate::shared::Shared;
use crate::sync::lock;

/// Largest response read (a certificate is a few hundred bytes).
pub(crate) const MAX_RESPONSE: usize = 64 * 1024;

/// What the thread is asked to do.
#[derive(Debug, Default)]
struct Control {
    started: bool,
    /// An `InitAuthentication` asked for a fetch now.
    requested: bool,
    /// A fetch is under way.
    busy: bool,
    /// Unix seconds at which to fetch again (renewal or retry).
    renew_at: Option<u64>,
    stop: bool,
}

/// The instance's fetch thread and what it is told.
#[derive(Debug, Default)]
pub(crate) struct Worker {
    control: Mutex<Control>,
    wake: Condvar,
}

impl Worker {
    /// Asks for a fetch now (starting the thread the first time); false when one is already
    /// asked for or under way.
    pub(crate) fn request(self: &Arc<Self>, shared: &Arc<Shared>, ca: CaClientConfig) -> bool {
        let mut c = lock(&self.control);
        if c.requested || c.busy {
            return false;
        }
        c.requested = true;
        if !c.started {
            let me = Arc::clone(self);
            let weak = Arc::downgrade(shared);
            let clock = shared.clock;
            let spawned = std::thread::Builder::new()
                .name("sockworks-auth".to_owned())
                .spawn(move || me.run(&weak, &ca, clock));
            if spawned.is_err() {
                c.requested = false;
                return false;
            }
            c.started = true;
        }
        self.wake.notify_all();
        true
    }

    /// Whether a fetch is asked for or under way.
    pub(crate) fn busy(&self) -> bool {
        let c = lock(&self.control);
        c.requested || c.busy
    }

    /// Fetch again at `unix` seconds (`None`: no renewal planned).
    pub(crate) fn schedule(&self, unix: Option<u64>) {
        lock(&self.control).renew_at = unix;
        self.wake.notify_all();
    }

    /// Ends the thread (the instance is going away).
    pub(crate) fn stop(&self) {
        lock(&self.control).stop = true;
        self.wake.notify_all();
    }

    /// The thread: waits for a request or the renewal time, fetches, repeats.
    fn run(&self, shared: &Weak<Shared>, ca: &CaClientConfig, clock: Clock) {
        loop {
            {
                let mut c = lock(&self.control);
                loop {
                    if c.stop {
                        return;
                    }
                    if c.requested {
                        break;
                    }
                    let wait = match c.renew_at {
                        Some(t) => {
                            let now = clock.unix_secs();
                            if t <= now {
                                break;
                            }
                            Duration::from_secs(t - now)
                        }
                        None => Duration::from_secs(3600),
                    };
                    c = match self.wake.wait_timeout(c, wait) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    };
                }
                c.requested = false;
                c.renew_at = None;
                c.busy = true;
            }
            let Some(sh) = shared.upgrade() else { return };
            let (next, failure) = fetch_once(&sh, ca, clock);
            {
                let mut c = lock(&self.control);
                c.busy = false;
                if c.renew_at.is_none() {
                    c.renew_at = next;
                }
            }
            // Published once the thread is free again: an InitAuthentication that sees the
            // failure may ask for a retry at once.
            if let Some(status) = failure {
                auth::set_status(&sh, status);
            }
        }
    }
}

/// One fetch: request, POST, install; returns when to fetch next and, if it failed, the
/// status to publish.
fn fetch_once(
    sh: &Arc<Shared>,
    ca: &CaClientConfig,
    clock: Clock,
) -> (Option<u64>, Option<AuthStatus>) {
    let (pem, generation, renewing) = match fetch_request(sh) {
        Ok(x) => x,
        Err(e) => return (None, Some(AuthStatus::new(Availability::Failed, e))),
    };
    let outcome = post_sign(ca, &pem, &clock).and_then(|body| {
        auth::install_fetched(sh, body.as_bytes(), generation)
            .map_err(|e| format!("the CA's certificate was refused: {e}"))
    });
    match outcome {
        Ok(renew_at) => (Some(renew_at), None),
        Err(e) if renewing => {
            let retry = clock.unix_secs() + ca.retry_after.as_secs().max(1);
            let status = AuthStatus::new(Availability::Retrying, format!("renewal failed: {e}"));
            (Some(retry), Some(status))
        }
        Err(e) => (None, Some(AuthStatus::new(Availability::Failed, e))),
    }
}

/// Where to send a request: `host:port` and the path of the signing endpoint.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    authority: String,
    path: String,
}

/// Parses `http://host[:port][/prefix]`.
pub(crate) fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("http://"))
        .map(|_| &url[7..])
        .ok_or_else(|| format!("CA URL {url:?}: only http:// URLs are supported"))?;
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("CA URL {url:?}: expected http://host:port"));
    }
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.ends_with(']') && p.parse::<u16>().is_ok());
    Ok(Target {
        authority: if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        },
        path: format!("{prefix}/v1/sign"),
    })
}

/// POSTs `body` (a `SOCKWORKS CERT REQUEST` block) to the CA service; the response body on
/// `200`, else why not (the status and the service's reason).
pub(crate) fn post_sign(ca: &CaClientConfig, body: &str, clock: &Clock) -> Result<String, String> {
    let target = parse_url(&ca.url)?;
    let fail = |what: &str, e: std::io::Error| format!("CA service {}: {what}: {e}", ca.url);
    let addr = target
        .authority
        .to_socket_addrs()
        .map_err(|e| fail("resolving", e))?
        .next()
        .ok_or_else(|| format!("CA service {}: no address", ca.url))?;
    let timeout = ca.timeout.max(Duration::from_millis(1));
    let start = clock.now();
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail("connecting", e))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| fail("socket", e))?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/x-pem-file\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        target.path,
        target.authority,
        ca.token,
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| fail("sending", e))?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if clock.now().saturating_since(start) > timeout {
            return Err(format!("CA service {}: timed out", ca.url));
        }
        let n = stream.read(&mut buf).map_err(|e| fail("reading", e))?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&buf[..n]);
        if response.len() > MAX_RESPONSE {
            return Err(format!("CA service {}: response too large", ca.url));
        }
    }
    parse_response(&response).map_err(|e| format!("CA service {}: {e}", ca.url))
}

/// The body of a `200` response, or the status and reason of another.
pub(crate) fn parse_response(response: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "malformed HTTP response".to_owned())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| format!("malformed status line {status_line:?}"))?;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && !value.eq_ignore_ascii_case("identity")
        {
            return Err(format!("unsupported Transfer-Encoding {value:?}"));
        }
    }
    let body = match length {
        Some(n) => body
            .get(..n)
            .ok_or_else(|| "response shorter than its Content-Length".to_owned())?,
        None => body,
    };
    if code == 200 {
        Ok(body.to_owned())
    } else {
        let reason = body.trim();
        let reason: String = reason.chars().take(300).collect();
        Err(format!("HTTP {code}: {reason}"))
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_response, parse_url};

    #[test]
    fn urls_need_http_and_get_a_default_port_and_the_sign_path() {
        let t = parse_url("http://127.0.0.1:8443").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8443");
        assert_eq!(t.path, "/v1/sign");
        let t = parse_url("HTTP://ca.example/prefix/").unwrap();
        assert_eq!(t.authority, "ca.example:80");
        assert_eq!(t.path, "/prefix/v1/sign");
        assert_eq!(parse_url("http://[::1]:9").unwrap().authority, "[::1]:9");
        assert_eq!(parse_url("http://[::1]").unwrap().authority, "[::1]:80");
        assert!(parse_url("https://ca.example").is_err());
        assert!(parse_url("http://").is_err());
        assert!(parse_url("http://user@host:1").is_err());
    }

    #[test]
    fn responses_give_the_body_on_200_and_the_reason_otherwise() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello trailing";
        assert_eq!(parse_response(ok).unwrap(), "hello");
        let no_len = b"HTTP/1.1 200 OK\r\n\r\nall of it";
        assert_eq!(parse_response(no_len).unwrap(), "all of it");
        let denied = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 14\r\n\r\nunknown token\n";
        assert_eq!(
            parse_response(denied).unwrap_err(),
            "HTTP 401: unknown token"
        );
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nshort").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello")
                .is_err()
        );
    }
}
