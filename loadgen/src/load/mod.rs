//! A windowed echo load: payload format, accounting, the client loop and its report.

pub mod client;
pub mod probe;
pub mod result;
pub mod tally;

use std::time::Duration;

/// What an application loop does when a turn found no work. Every loop in a comparison
/// (both servers, both clients) uses this one policy, so none gets an edge from waiting
/// differently: yield to the stack's own threads a few times, then sleep briefly.
#[derive(Debug, Default)]
pub struct Idle {
    turns: u32,
}

impl Idle {
    /// Turns that only yield before the loop starts sleeping.
    pub const SPIN_TURNS: u32 = 64;
    /// The sleep once spinning is over (the first message after a quiet spell waits at most
    /// this much, plus the OS's timer slack).
    pub const SLEEP: Duration = Duration::from_micros(50);

    /// Records a turn: `busy` when it did any work; waits when it did not.
    pub fn turn(&mut self, busy: bool) {
        if busy {
            self.turns = 0;
        } else if self.turns < Self::SPIN_TURNS {
            self.turns += 1;
            std::thread::yield_now();
        } else {
            std::thread::sleep(Self::SLEEP);
        }
    }
}
