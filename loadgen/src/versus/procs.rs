//! Child processes of a comparison (servers and GNS load clients) and what `/proc` says about
//! them: stdout arrives line by line on a channel, every wait has a deadline, and a child is
//! killed when its handle drops.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};

use crate::now;

/// A line of a child's stdout: (child id, line).
pub(crate) type Line = (usize, String);

/// A running child process; killed and reaped on drop.
pub(crate) struct Proc {
    /// For messages.
    pub name: String,
    child: Child,
}

impl Proc {
    /// Starts `exe args`, stdout lines going to `tx` tagged with `id`, stderr inherited.
    pub(crate) fn spawn(
        name: &str,
        exe: &Path,
        args: &[String],
        id: usize,
        tx: Sender<Line>,
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send((id, line)).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            name: name.to_owned(),
            child,
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let until = now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if now() >= until {
                bail!("{} still running after {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits up to `timeout` for a line from `rx` that `pred` accepts; other lines are passed to
/// `other`.
pub(crate) fn wait_line(
    rx: &Receiver<Line>,
    timeout: Duration,
    what: &str,
    mut pred: impl FnMut(&Line) -> bool,
) -> anyhow::Result<Line> {
    let until = now() + timeout;
    loop {
        let left = until.saturating_duration_since(now());
        match rx.recv_timeout(left) {
            Ok(line) if pred(&line) => return Ok(line),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => bail!("no {what} within {timeout:?}"),
            Err(RecvTimeoutError::Disconnected) => bail!("the process exited before {what}"),
        }
    }
}

/// A fresh line channel.
pub(crate) fn lines() -> (Sender<Line>, Receiver<Line>) {
    channel()
}

/// `addr:port` from a `LISTENING addr=IP port=PORT` line.
pub(crate) fn listening_addr(line: &str) -> Option<std::net::SocketAddr> {
    let rest = line.strip_prefix("LISTENING ")?;
    let mut ip = None;
    let mut port = None;
    for field in rest.split_whitespace() {
        match field.split_once('=') {
            Some(("addr", v)) => ip = v.parse::<std::net::IpAddr>().ok(),
            Some(("port", v)) => port = v.parse::<u16>().ok(),
            _ => {}
        }
    }
    Some(std::net::SocketAddr::new(ip?, port?))
}

/// CPU time of every thread of `pid` so far, seconds: utime + stime from `/proc/PID/stat`
/// (clock ticks of 10 ms).
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3, state;
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_sec())
}

/// USER_HZ, the unit of `/proc/PID/stat` times (100 on Linux for every architecture we run).
fn ticks_per_sec() -> f64 {
    100.0
}

/// Peak resident set of `pid`, KiB: VmHWM from `/proc/PID/status`.
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Datagrams the kernel dropped because a UDP socket's receive buffer was full, system-wide
/// (`RcvbufErrors` in `/proc/net/snmp`).
pub(crate) fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let i = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// `gns-load`, expected next to this executable.
pub(crate) fn gns_load_exe() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("finding loadgen's own path")?;
    let dir = me
        .parent()
        .ok_or_else(|| anyhow!("loadgen has no directory"))?;
    let exe = dir.join("gns-load");
    if exe.is_file() {
        return Ok(exe);
    }
    bail!(
        "the real-GNS load tool is missing: {} does not exist.\n\
         Build it (it compiles Valve's GameNetworkingSockets, needs cmake, protobuf-compiler,\n\
         libssl-dev, clang, libclang-dev) with:\n\n    \
         cargo build --release -p sockworks-interop --bin gns-load\n\n\
         and run loadgen from the same target directory (target/release/loadgen).",
        exe.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_line_gives_the_address() {
        assert_eq!(
            listening_addr("LISTENING addr=127.0.0.1 port=4000"),
            Some("127.0.0.1:4000".parse().unwrap())
        );
        assert_eq!(
            listening_addr("LISTENING addr=::1 port=9"),
            Some("[::1]:9".parse().unwrap())
        );
        assert_eq!(listening_addr("RESULT x=1"), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_a_peak_rss() {
        let pid = std::process::id();
        assert!(cpu_secs(pid).is_some());
        assert!(peak_rss_kib(pid).is_some_and(|k| k > 0));
        assert!(udp_rcvbuf_errors().is_some());
    }
}
