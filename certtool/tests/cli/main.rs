//! Runs the built `sockworks-cert` binary: the commands (`commands`) and the HTTP service
//! (`serve`). Every child process is bounded in time and killed on failure.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed file or socket operation is a failed test"
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use wait_timeout::ChildExt;

mod auth_service;
mod commands;
mod serve;

/// Longest any one-shot command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sockworks-cert"))
}

/// The outcome of one command, with text fields for assertions.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// A clean failure: exit status 1, one `error:` message, no panic.
    fn fails_with(&self, needle: &str) -> &Self {
        assert_eq!(
            self.code,
            Some(1),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.starts_with("error: "),
            "stderr: {}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "stderr: {}", self.stderr);
        assert!(
            self.stderr.contains(needle),
            "expected {needle:?} in stderr: {}",
            self.stderr
        );
        self
    }
}

/// Runs `sockworks-cert args…` in `dir`, feeding `stdin`, within [`COMMAND_LIMIT`].
fn run_in(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = bin()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockworks-cert");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    let status = child.wait_timeout(COMMAND_LIMIT).expect("wait");
    if status.is_none() {
        let _ = child.kill();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("collect output");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn run(dir: &Path, args: &[&str]) -> Run {
    run_in(dir, args, b"")
}
