//! Send-side lane scheduler: strict priorities, weighted fair queueing within a priority
//! (spec §4.18), and the per-lane queue-time prediction of `GetConnectionRealTimeStatus` (§5.5).
//!
//! The scheduler does not own message bytes: it tracks the sizes of the messages queued on each
//! lane and answers "which lane sends next". Lanes with the same priority form a class with a
//! virtual clock; every queued message gets a virtual finish time and the lane whose head
//! message finishes first is served. A lane's multiplier (virtual time per byte) is
//! `65536 × Σweights(class) / weight`, so heavier lanes' finish times grow more slowly.
//!
//! ```text
//!   class prio 0:  lane 1  [f=10][f=20]            <- served first while non-empty
//!   class prio 1:  lane 2  [f=40][f=80]   clock=30 <- WFQ between lanes 2 and 3
//!                  lane 3  [f=33][f=36][f=39]
//!   class prio 2:  lane 0  [f=..]                  <- only when prio 0 and 1 are empty
//! ```
//!
//! A lane that goes idle restarts from the class clock, so it accumulates no credit.

use std::collections::VecDeque;
use std::time::Duration;

/// Most lanes a connection may have (`ConfigureConnectionLanes`, §4.18).
pub(crate) const MAX_LANES: usize = 255;

/// Virtual-time scale of one byte on a lane that owns its whole class (GNS uses 65536).
pub(crate) const VIRTUAL_TIME_SCALE: u64 = 65_536;

/// Class clocks are rebased to 0 when they exceed this (2^53, as GNS does).
pub(crate) const CLOCK_REBASE_THRESHOLD: u64 = 1 << 53;

/// A lane index on one direction of a connection (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct LaneId(pub u8);

impl LaneId {
    fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Priority and weight of one lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaneConfig {
    /// Lower is served first, strictly.
    pub priority: i32,
    /// Share of bandwidth within the priority class; must be ≥ 1.
    pub weight: u16,
}

impl Default for LaneConfig {
    /// GNS's defaults when the app passes NULL arrays: priority 0, weight 1.
    fn default() -> Self {
        LaneConfig {
            priority: 0,
            weight: 1,
        }
    }
}

/// Why a lane configuration was refused (maps to `k_EResultInvalidParam`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LaneConfigError {
    /// Zero lanes requested.
    #[error("at least one lane is required")]
    NoLanes,
    /// More than [`MAX_LANES`].
    #[error("{requested} lanes requested, at most 255 allowed")]
    TooManyLanes {
        /// The requested count.
        requested: usize,
    },
    /// The lane count can only grow.
    #[error("cannot shrink from {current} lanes to {requested}")]
    CannotShrink {
        /// Lanes configured now.
        current: usize,
        /// The requested count.
        requested: usize,
    },
    /// A lane weight of 0.
    #[error("lane {lane} has weight 0")]
    ZeroWeight {
        /// The offending lane index.
        lane: usize,
    },
}

/// Why a scheduler operation on one lane was refused (a caller bug, never peer input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum LaneError {
    /// The lane index is not configured.
    #[error("lane {0} is not configured")]
    UnknownLane(u8),
    /// `on_sent` for a lane with nothing queued.
    #[error("lane {0} has nothing queued")]
    NothingQueued(u8),
}

/// One queued message: its remaining size is tracked on the lane for the head only.
#[derive(Debug, Clone, Copy)]
struct Queued {
    size: u32,
    /// Virtual finish time in the lane's class.
    finish: u64,
}

#[derive(Debug, Clone)]
struct Lane {
    config: LaneConfig,
    /// Index into `Schedule::classes`.
    class: usize,
    /// Virtual time per byte.
    multiplier: u64,
    queue: VecDeque<Queued>,
    /// Bytes of the head message already sent.
    head_sent: u32,
    /// Unsent bytes across the queue.
    queued_bytes: u64,
}

#[derive(Debug, Clone)]
struct Class {
    priority: i32,
    clock: u64,
    lanes: Vec<u8>,
}

/// Chooses which lane's head message goes into the next packet. One pointer while parked
/// (a connection that has nothing queued and the default lane: issue 16, memory per idle
/// connection); the schedule itself is boxed.
#[derive(Debug, Clone)]
pub(crate) struct LaneScheduler(Option<Box<Schedule>>);

impl Default for LaneScheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl LaneScheduler {
    /// One lane, priority 0, weight 1: every connection starts like this.
    pub(crate) fn new() -> Self {
        LaneScheduler(Some(Box::new(Schedule::new())))
    }

    /// No lanes at all: the state of a connection whose default lane is parked;
    /// [`LaneScheduler::new`] restores it.
    pub(crate) fn parked() -> Self {
        LaneScheduler(None)
    }

    /// Whether this is the starting state, one lane of the default configuration with
    /// nothing queued: then it can be parked and rebuilt by `new` without a difference.
    pub(crate) fn is_default_and_empty(&self) -> bool {
        self.0.as_ref().is_some_and(|s| s.is_default_and_empty())
    }

    /// Frees the capacity of empty lane queues (idle connections, issue 16).
    pub(crate) fn release_idle(&mut self) {
        if let Some(s) = self.0.as_mut() {
            s.release_idle();
        }
    }

    /// Number of configured lanes (0 while parked).
    pub(crate) fn lane_count(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.lane_count())
    }

    /// See [`Schedule::configure`]; a parked scheduler starts from no lanes.
    pub(crate) fn configure(&mut self, configs: &[LaneConfig]) -> Result<(), LaneConfigError> {
        self.0
            .get_or_insert_with(|| Box::new(Schedule::empty()))
            .configure(configs)
    }

    /// The configuration of `lane`.
    #[cfg(test)]
    pub(crate) fn config(&self, lane: LaneId) -> Option<LaneConfig> {
        self.0.as_ref()?.config(lane)
    }

    /// Queues a message of `size` bytes (including reliable framing) on `lane`.
    pub(crate) fn push(&mut self, lane: LaneId, size: u32) -> Result<(), LaneError> {
        match self.0.as_mut() {
            Some(s) => s.push(lane, size),
            None => Err(LaneError::UnknownLane(lane.0)),
        }
    }

    /// See [`Schedule::next_lane`].
    pub(crate) fn next_lane(&self) -> Option<LaneId> {
        self.0.as_ref()?.next_lane()
    }

    /// Unsent bytes of `lane`'s head message.
    #[cfg(test)]
    pub(crate) fn head_remaining(&self, lane: LaneId) -> Option<u32> {
        self.0.as_ref()?.head_remaining(lane)
    }

    /// See [`Schedule::on_sent`].
    pub(crate) fn on_sent(
        &mut self,
        lane: LaneId,
        bytes: u32,
        message_finished: bool,
    ) -> Result<(), LaneError> {
        match self.0.as_mut() {
            Some(s) => s.on_sent(lane, bytes, message_finished),
            None => Err(LaneError::NothingQueued(lane.0)),
        }
    }

    /// Unsent bytes queued on `lane`.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self, lane: LaneId) -> u64 {
        self.0.as_ref().map_or(0, |s| s.queued_bytes(lane))
    }

    /// Whether no lane has anything queued.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|s| s.is_empty())
    }

    /// See [`Schedule::queue_time`] (zero while parked).
    pub(crate) fn queue_time(&self, lane: LaneId, rate_bytes_per_sec: u32) -> Duration {
        self.0
            .as_ref()
            .map_or(Duration::ZERO, |s| s.queue_time(lane, rate_bytes_per_sec))
    }
}

/// The lanes, their priority classes and queued messages.
#[derive(Debug, Clone)]
struct Schedule {
    lanes: Vec<Lane>,
    /// Ascending priority.
    classes: Vec<Class>,
}

impl Schedule {
    /// One lane, priority 0, weight 1.
    fn new() -> Self {
        let mut s = Schedule::empty();
        // invariant: one default lane is always a valid configuration.
        s.configure(&[LaneConfig::default()])
            .expect("one default lane is valid");
        s
    }

    /// No lanes (to be configured).
    fn empty() -> Self {
        Schedule {
            lanes: Vec::new(),
            classes: Vec::new(),
        }
    }

    /// Whether this is the starting state, one lane of the default configuration with
    /// nothing queued: then it can be parked and rebuilt by `new` without a difference.
    pub(crate) fn is_default_and_empty(&self) -> bool {
        matches!(self.lanes.as_slice(), [l] if l.config == LaneConfig::default() && l.queue.is_empty())
    }

    /// Frees the capacity of empty lane queues (idle connections, issue 16).
    pub(crate) fn release_idle(&mut self) {
        for lane in &mut self.lanes {
            if lane.queue.is_empty() {
                lane.queue = VecDeque::new();
            }
        }
    }

    /// Number of configured lanes.
    pub(crate) fn lane_count(&self) -> usize {
        self.lanes.len()
    }

    /// Applies `ConfigureConnectionLanes`: the count may only grow, weights must be ≥ 1.
    /// Queued messages keep their order; their virtual times are recomputed from zero.
    // GNS: CSteamNetworkConnectionBase::SNP_ConfigureLanes
    pub(crate) fn configure(&mut self, configs: &[LaneConfig]) -> Result<(), LaneConfigError> {
        let n = configs.len();
        if n == 0 {
            return Err(LaneConfigError::NoLanes);
        }
        if n > MAX_LANES {
            return Err(LaneConfigError::TooManyLanes { requested: n });
        }
        if n < self.lanes.len() {
            return Err(LaneConfigError::CannotShrink {
                current: self.lanes.len(),
                requested: n,
            });
        }
        if let Some(lane) = configs.iter().position(|c| c.weight == 0) {
            return Err(LaneConfigError::ZeroWeight { lane });
        }
        let mut priorities: Vec<i32> = configs.iter().map(|c| c.priority).collect();
        priorities.sort_unstable();
        priorities.dedup();
        self.classes = priorities
            .iter()
            .map(|&priority| Class {
                priority,
                clock: 0,
                lanes: Vec::new(),
            })
            .collect();
        // Exactly `n` (growing from empty would reserve four).
        self.lanes.reserve_exact(n - self.lanes.len());
        self.lanes.resize_with(n, || Lane {
            config: LaneConfig::default(),
            class: 0,
            multiplier: 0,
            queue: VecDeque::new(),
            head_sent: 0,
            queued_bytes: 0,
        });
        for (i, (lane, &config)) in self.lanes.iter_mut().zip(configs).enumerate() {
            // invariant: every priority is in `priorities`.
            let class = priorities.binary_search(&config.priority).unwrap_or(0);
            lane.config = config;
            lane.class = class;
            // invariant: i < 255.
            self.classes[class]
                .lanes
                .push(u8::try_from(i).unwrap_or(u8::MAX));
        }
        for class in &self.classes {
            let sum: u64 = class
                .lanes
                .iter()
                .map(|&l| u64::from(self.lanes[usize::from(l)].config.weight))
                .sum();
            for &l in &class.lanes {
                let lane = &mut self.lanes[usize::from(l)];
                lane.multiplier = VIRTUAL_TIME_SCALE * sum / u64::from(lane.config.weight);
                let mut last = 0u64;
                let mut first = true;
                for q in lane.queue.iter_mut() {
                    let unsent = if first {
                        q.size - lane.head_sent
                    } else {
                        q.size
                    };
                    first = false;
                    last = last.saturating_add(u64::from(unsent).saturating_mul(lane.multiplier));
                    q.finish = last;
                }
            }
        }
        Ok(())
    }

    /// The configuration of `lane`.
    #[cfg(test)]
    pub(crate) fn config(&self, lane: LaneId) -> Option<LaneConfig> {
        self.lanes.get(lane.index()).map(|l| l.config)
    }

    fn lane(&self, lane: LaneId) -> Result<&Lane, LaneError> {
        self.lanes
            .get(lane.index())
            .ok_or(LaneError::UnknownLane(lane.0))
    }

    /// Queues a message of `size` bytes (including reliable framing) on `lane`.
    pub(crate) fn push(&mut self, lane: LaneId, size: u32) -> Result<(), LaneError> {
        self.lane(lane)?;
        let l = &mut self.lanes[lane.index()];
        let start = match l.queue.back() {
            Some(prev) => prev.finish,
            None => self.classes[l.class].clock,
        };
        let finish = start.saturating_add(u64::from(size).saturating_mul(l.multiplier));
        l.queue.push_back(Queued { size, finish });
        l.queued_bytes += u64::from(size);
        Ok(())
    }

    /// The lane to take data from next: the highest-priority class with data, and in it the
    /// lane whose head message has the earliest virtual finish time (ties: lowest lane).
    pub(crate) fn next_lane(&self) -> Option<LaneId> {
        for class in &self.classes {
            let best = class
                .lanes
                .iter()
                .filter_map(|&l| {
                    let q = self.lanes[usize::from(l)].queue.front()?;
                    Some((q.finish, l))
                })
                .min();
            if let Some((_, l)) = best {
                return Some(LaneId(l));
            }
        }
        None
    }

    /// Unsent bytes of `lane`'s head message.
    #[cfg(test)]
    pub(crate) fn head_remaining(&self, lane: LaneId) -> Option<u32> {
        let l = self.lanes.get(lane.index())?;
        l.queue.front().map(|q| q.size - l.head_sent)
    }

    /// Records that `bytes` of `lane`'s head message went out; `message_finished` pops it.
    /// Finishing moves the class clock to the message's finish time; a partial send advances
    /// it by `bytes × multiplier`.
    pub(crate) fn on_sent(
        &mut self,
        lane: LaneId,
        bytes: u32,
        message_finished: bool,
    ) -> Result<(), LaneError> {
        self.lane(lane)?;
        let l = &mut self.lanes[lane.index()];
        let Some(&head) = l.queue.front() else {
            return Err(LaneError::NothingQueued(lane.0));
        };
        let class = &mut self.classes[l.class];
        if message_finished {
            l.queued_bytes -= u64::from(head.size - l.head_sent);
            l.head_sent = 0;
            l.queue.pop_front();
            class.clock = head.finish;
        } else {
            let bytes = bytes.min(head.size - l.head_sent);
            l.head_sent += bytes;
            l.queued_bytes -= u64::from(bytes);
            class.clock = class
                .clock
                .saturating_add(u64::from(bytes).saturating_mul(l.multiplier));
        }
        let class_idx = l.class;
        self.rebase_if_needed(class_idx);
        Ok(())
    }

    fn rebase_if_needed(&mut self, class_idx: usize) {
        let class = &mut self.classes[class_idx];
        if class.clock <= CLOCK_REBASE_THRESHOLD {
            return;
        }
        let shift = class.clock;
        class.clock = 0;
        for &l in &class.lanes {
            for q in self.lanes[usize::from(l)].queue.iter_mut() {
                q.finish = q.finish.saturating_sub(shift);
            }
        }
    }

    /// Unsent bytes queued on `lane`.
    #[cfg(test)]
    pub(crate) fn queued_bytes(&self, lane: LaneId) -> u64 {
        self.lanes.get(lane.index()).map_or(0, |l| l.queued_bytes)
    }

    /// Whether no lane has anything queued.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.lanes.iter().all(|l| l.queue.is_empty())
    }

    /// Predicted time until `lane`'s last queued byte is sent at `rate_bytes_per_sec`, if
    /// nothing else is queued meanwhile: all bytes of higher-priority classes, plus in its own
    /// class every message that finishes (virtually) no later than this lane's last one.
    /// Zero for an empty lane. The caller adds the token bucket's debt (§5.5). Costs one pass
    /// over the queued messages; meant for status queries, not the send path.
    // GNS: CSteamNetworkConnectionBase::SNP_PopulateRealTimeStatus (per-lane queue time)
    pub(crate) fn queue_time(&self, lane: LaneId, rate_bytes_per_sec: u32) -> Duration {
        let Some(me) = self.lanes.get(lane.index()) else {
            return Duration::ZERO;
        };
        let Some(last) = me.queue.back() else {
            return Duration::ZERO;
        };
        let my_priority = self.classes[me.class].priority;
        let mut bytes = 0u64;
        for other in &self.lanes {
            let p = self.classes[other.class].priority;
            if p < my_priority {
                bytes += other.queued_bytes;
            } else if other.class == me.class {
                let mut head = true;
                for q in other.queue.iter().take_while(|q| q.finish <= last.finish) {
                    let unsent = if head {
                        q.size - other.head_sent
                    } else {
                        q.size
                    };
                    head = false;
                    bytes += u64::from(unsent);
                }
            }
        }
        send_time(bytes, rate_bytes_per_sec)
    }
}

/// How long `bytes` take to go at `rate_bytes_per_sec` (a queue time).
pub(crate) fn send_time(bytes: u64, rate_bytes_per_sec: u32) -> Duration {
    let rate = u64::from(rate_bytes_per_sec.max(1));
    Duration::from_micros(bytes.saturating_mul(1_000_000) / rate)
}

#[cfg(test)]
mod tests;
