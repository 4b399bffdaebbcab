//! Terminal plumbing shared by the chat examples: stdin lines on a channel (read by a thread,
//! since the network loop must not block on the keyboard) and a Ctrl-C flag.

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;

/// How long the examples keep their instance alive after closing connections, so the shards
/// get to send the goodbyes and close packets before the process exits.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_millis(200);

/// How long the loops sleep when there was nothing to do (the API has no blocking wait).
pub(crate) const IDLE: Duration = Duration::from_millis(5);

/// Lines typed on stdin. The channel disconnects at end of input (Ctrl-D) or on a read error.
pub(crate) fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break; // the main loop is gone
            }
        }
    });
    rx
}

/// A flag that Ctrl-C (SIGINT, SIGTERM) raises.
pub(crate) fn ctrl_c_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || f.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;
    Ok(flag)
}
