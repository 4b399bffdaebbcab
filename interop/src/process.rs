//! Running a `gns-peer` child process from tests: its stdout events arrive on a channel, every
//! wait has a deadline, and the child is killed when the handle drops.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::events::Event;

/// Upper bound for any single wait in these tests; the peers' own `--max-seconds` is below it.
pub const WAIT: Duration = Duration::from_secs(40);
/// Peers run at 4 MB/s instead of GNS's 256 KB/s initial rate, so 100 KiB takes milliseconds.
pub const FAST: [&str; 4] = ["--send-rate", "4000000", "--max-seconds", "30"];

#[expect(
    clippy::disallowed_methods,
    reason = "deadlines on child processes are wall-clock"
)]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// A running `gns-peer` whose stdout lines arrive on a channel; killed on drop.
pub struct PeerProc {
    name: &'static str,
    child: Child,
    lines: Receiver<String>,
    /// Every event read so far.
    pub seen: Vec<Event>,
}

impl PeerProc {
    /// Starts `exe` (the `gns-peer` binary) with `args`; `name` prefixes its echoed lines.
    pub fn spawn(exe: &str, name: &'static str, args: &[&str]) -> Self {
        let mut cmd = Command::new(exe);
        cmd.args(args);
        Self::spawn_command(cmd, name)
    }

    /// Starts a prepared command (e.g. one that runs inside a network namespace); stdin is
    /// null, stdout piped, stderr inherited.
    pub fn spawn_command(mut cmd: Command, name: &'static str) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gns-peer");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            name,
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one satisfies `pred` and returns it; panics at the deadline or EOF.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let until = now() + WAIT;
        loop {
            let left = until.saturating_duration_since(now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    eprintln!("[{}] {line}", self.name);
                    let event =
                        Event::parse(&line).unwrap_or_else(|| panic!("unparsable line {line:?}"));
                    self.seen.push(event.clone());
                    if pred(&event) {
                        return event;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{}: no {what} within {WAIT:?}", self.name)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{}: exited before {what}", self.name)
                }
            }
        }
    }

    /// Reads through the final DONE line (or takes the one already read) and returns it with
    /// the exit status.
    pub fn finish(&mut self) -> (Event, ExitStatus) {
        self.finish_on("DONE")
    }

    /// Like [`PeerProc::finish`] for a peer whose last line is of kind `last`.
    pub fn finish_on(&mut self, last: &str) -> (Event, ExitStatus) {
        let done = match self.seen.iter().find(|e| e.kind == last) {
            Some(done) => done.clone(),
            None => self.wait_for(last, |e| e.kind == last),
        };
        // The peer exits right after DONE; its stdout closing is the signal, so no polling.
        match self.lines.recv_timeout(WAIT) {
            Ok(line) => panic!("{}: line after {last}: {line:?}", self.name),
            Err(RecvTimeoutError::Timeout) => panic!("{}: stdout open after {last}", self.name),
            Err(RecvTimeoutError::Disconnected) => {}
        }
        (done, self.child.wait().expect("wait"))
    }

    /// Events that arrived so far, read without waiting (also appended to `seen`).
    pub fn ready(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Ok(line) = self.lines.try_recv() {
            eprintln!("[{}] {line}", self.name);
            let event = Event::parse(&line).unwrap_or_else(|| panic!("unparsable line {line:?}"));
            self.seen.push(event.clone());
            out.push(event);
        }
        out
    }

    /// Kills the process at once (SIGKILL: it sends nothing more) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Events of one kind seen so far.
    pub fn of_kind(&self, kind: &str) -> Vec<&Event> {
        self.seen.iter().filter(|e| e.kind == kind).collect()
    }
}

impl Drop for PeerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
