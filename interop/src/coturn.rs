//! A coturn `turnserver` (STUN + TURN over UDP) inside a test host, from a temporary config:
//! `--no-tls --no-dtls`, listening and relaying on the host's address, port 3478, with either
//! no authentication or long-term credentials for one static user (realm `sockworks.test`).
//! Killed on drop.

use std::io::{self, BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use crate::netns::Host;

/// The STUN/TURN port.
pub const PORT: u16 = 3478;
/// The realm of the long-term credentials.
pub const REALM: &str = "sockworks.test";

/// Why coturn cannot run here (`turnserver` not installed), or `None`.
#[must_use]
pub fn unavailable() -> Option<String> {
    match std::process::Command::new("turnserver")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => None,
        Err(e) => Some(format!(
            "`turnserver` (Debian package coturn) not runnable: {e}"
        )),
    }
}

/// A running coturn; killed on drop.
#[derive(Debug)]
pub struct Coturn {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    /// `host address:3478`.
    pub addr: SocketAddr,
}

impl Coturn {
    /// Starts coturn in `host`; `user` = `Some((name, password))` enables long-term
    /// credentials (`lt-cred-mech`, `user=name:password`), `None` allows anonymous use.
    /// Returns once its UDP listener is open (at most 10 s).
    pub fn start(host: &Host, user: Option<(&str, &str)>) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("swk-turn").tempdir()?;
        let ip = host.v4;
        let d = dir.path().display();
        let auth = match user {
            Some((u, p)) => format!("lt-cred-mech\nuser={u}:{p}\n"),
            None => "no-auth\n".to_owned(),
        };
        let conf = format!(
            "listening-ip={ip}\nrelay-ip={ip}\nlistening-port={PORT}\nmin-port=49152\n\
             max-port=49999\nrealm={REALM}\nno-cli\nfingerprint\n{auth}userdb={d}/turndb\n\
             pidfile={d}/turn.pid\nlog-file=stdout\nsimple-log\n"
        );
        let path = dir.path().join("turnserver.conf");
        std::fs::write(&path, conf)?;
        let mut child = host
            .command("turnserver")
            .arg("-c")
            .arg(&path)
            .args(["--no-tls", "--no-dtls", "-v"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            // Keep reading to the end so coturn never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("UDP listener opened") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
                if std::env::var_os("SWK_TURN_LOG").is_some() {
                    eprintln!("[turnserver] {line}");
                }
                log2.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
            }
        });
        let mut me = Self {
            child,
            log,
            _dir: dir,
            addr: SocketAddr::new(ip.into(), PORT),
        };
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            let status = me.child.try_wait();
            return Err(io::Error::other(format!(
                "turnserver did not open its UDP listener within 10 s (status {status:?})"
            )));
        }
        Ok(me)
    }
}

impl Coturn {
    /// Its log lines so far (verbose; `SWK_TURN_LOG=1` also echoes them to stderr).
    #[must_use]
    pub fn log(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
