//! `serve`: the CA as an HTTP/1.1 service that signs the certificate requests
//! `GetCertificateRequest` produces, for callers holding a token ([`tokens`]).
//!
//! ```text
//!  accept loop ──(active < max_connections)──► one thread per connection:
//!      │                                         read_request (bounded: head, body, time)
//!      │                                         Service::handle (pure: routes, tokens, signing)
//!      │                                         write_response, Connection: close
//!      └─(otherwise)──► 503 at once, no thread
//! ```
//!
//! Memory is bounded by `max_connections × (max_head + max_body)` plus the threads' stacks;
//! time per connection by the read timeout and the request deadline. The CA key file must not
//! be readable by group or others, or the service refuses to start. The bound address is
//! printed on stdout (`listening on 127.0.0.1:PORT`) so that port 0 can be used; one line per
//! request goes to stderr.

pub mod handler;
pub mod http;
pub mod tokens;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};

use self::handler::Service;
use self::http::{Limits, Response};
use self::tokens::Tokens;
use crate::cli::ServeArgs;
use crate::commands::load_private_key;
use crate::{clock, files, issuance};

/// The largest `--max-body` accepted (requests are about 100 bytes).
pub const MAX_BODY_LIMIT: usize = 1 << 20;
/// Most bytes read and thrown away after an error answer, so the client sees the answer
/// rather than a reset.
const DRAIN_LIMIT: usize = 1 << 20;

/// Runs the service until the process is stopped.
pub fn run(args: &ServeArgs) -> Result<()> {
    files::check_private(&args.ca_key).context("refusing to start")?;
    let ca_key = load_private_key(&args.ca_key).context("CA key")?;
    let tokens = Tokens::load(&args.tokens)?;
    ensure!(
        args.max_connections >= 1,
        "--max-connections must be at least 1"
    );
    ensure!(
        (1..=MAX_BODY_LIMIT).contains(&args.max_body),
        "--max-body must be 1 to {MAX_BODY_LIMIT} bytes"
    );
    ensure!(
        args.read_timeout >= 1,
        "--read-timeout must be at least 1 second"
    );
    let now = u32::try_from(clock::unix_now()).context("the clock is past 2106")?;
    let lifetime = match args.lifetime {
        Some(secs) => {
            ensure!(secs >= 5, "--lifetime must be at least 5 seconds");
            secs
        }
        None => {
            issuance::expiry_after(now, args.days).context("--days")?;
            args.days.saturating_mul(86_400)
        }
    };
    let pop_ids = issuance::pop_ids(&args.pop)?;
    let service = Service {
        ca_key,
        tokens,
        app_ids: args.app.clone(),
        pop_ids: (!pop_ids.is_empty()).then_some(pop_ids),
        lifetime,
        backdate: args.backdate,
    };
    let limits = Limits {
        max_body: args.max_body,
        read_timeout: Duration::from_secs(args.read_timeout),
        request_deadline: Duration::from_secs(args.read_timeout.saturating_mul(4)),
        ..Limits::default()
    };
    let listener = TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    println!("listening on {local}");
    std::io::stdout().flush()?;
    eprintln!(
        "sockworks-cert: CA key ID{}, {} token line(s), certificates valid {} s, app ids {:?}",
        service.ca_key.key_id(),
        service.tokens.len(),
        service.lifetime,
        service.app_ids
    );
    Server {
        service: Arc::new(service),
        limits,
        max_connections: args.max_connections,
        active: Arc::new(AtomicUsize::new(0)),
    }
    .serve(&listener);
    Ok(())
}

/// The accept loop's state.
struct Server {
    service: Arc<Service>,
    limits: Limits,
    max_connections: usize,
    active: Arc<AtomicUsize>,
}

/// Decrements the active count when a connection thread ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Server {
    fn serve(&self, listener: &TcpListener) {
        for stream in listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors or memory: back off briefly rather than spin.
                    eprintln!("sockworks-cert: accept: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            let peer = stream
                .peer_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
            if self.active.fetch_add(1, Ordering::AcqRel) >= self.max_connections {
                self.active.fetch_sub(1, Ordering::AcqRel);
                reject_busy(stream, peer);
                continue;
            }
            let slot = Slot(Arc::clone(&self.active));
            let service = Arc::clone(&self.service);
            let limits = self.limits;
            let spawned = std::thread::Builder::new()
                .name("cert-conn".to_owned())
                .stack_size(256 * 1024)
                .spawn(move || {
                    let _slot = slot;
                    connection(stream, peer, &service, &limits);
                });
            if let Err(e) = spawned {
                eprintln!("sockworks-cert: cannot start a connection thread: {e}");
            }
        }
    }
}

/// Serves one request on `stream`.
fn connection(mut stream: TcpStream, peer: SocketAddr, service: &Service, limits: &Limits) {
    let _ = stream.set_write_timeout(Some(limits.read_timeout));
    let (response, line, drain) = match http::read_request(&mut stream, limits) {
        Ok(req) => {
            let outcome = service.handle(&req, clock::unix_now());
            let line = format!(
                "{} {} -> {} {}",
                req.method, req.path, outcome.response.status, outcome.note
            );
            (outcome.response, line, false)
        }
        Err(e) => match e.status() {
            Some(status) => {
                let line = format!("bad request -> {status} {e}");
                (Response::text(status, e.to_string()), line, true)
            }
            None => {
                if !matches!(e, http::HttpError::Empty) {
                    eprintln!("sockworks-cert: {peer} {e}");
                }
                return;
            }
        },
    };
    eprintln!("sockworks-cert: {peer} {line}");
    if let Err(e) = http::write_response(&mut stream, &response) {
        eprintln!("sockworks-cert: {peer} writing the answer: {e}");
        return;
    }
    if drain {
        drain_and_close(stream, limits.read_timeout);
    }
}

/// After an early answer (e.g. 413), reads and discards what the client is still sending, up
/// to [`DRAIN_LIMIT`] bytes or `timeout`, so that closing does not reset the connection
/// before the client has read the answer.
fn drain_and_close(mut stream: TcpStream, timeout: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = clock::monotonic() + timeout.min(Duration::from_secs(2));
    let mut buf = [0u8; 8192];
    let mut total = 0;
    while total < DRAIN_LIMIT {
        let left = deadline.saturating_duration_since(clock::monotonic());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// Answers 503 without a thread when every slot is taken.
fn reject_busy(mut stream: TcpStream, peer: SocketAddr) {
    eprintln!("sockworks-cert: {peer} -> 503 too many connections");
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let response =
        Response::text(503, "too many connections; retry later").with_header("Retry-After", "1");
    let _ = http::write_response(&mut stream, &response);
    let _ = stream.shutdown(Shutdown::Write);
}
