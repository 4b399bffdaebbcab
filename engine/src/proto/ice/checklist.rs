//! Candidate pairs, connectivity checks, nomination and selection.
//!
//! Pairs are local × remote candidates of one family, never reordered in storage; the order
//! GNS checks them in (`BIsPreferredRouteOver`: same subnet first, then pair priority) is
//! computed when needed. Each 50 ms think starts at most one check: the head of the triggered
//! queue, else the first Waiting pair, else Frozen pairs of foundations not in progress are
//! thawed and the first is checked.
//!
//! ```text
//!  Frozen -> Waiting -> InProgress -> Succeeded
//!                            \-> Failed (5 sends, ≈5.3 s)
//! ```
//! GNS: steamnetworkingsockets_ice_client.cpp, `Think_TestPeerConnectivity`,
//! `OnPacketReceived`, `SetSelectedCandidatePair`.

use std::net::SocketAddr;

use super::agent::{IceAgent, IceEvent};
use super::candidate::{Candidate, CandidateKind, candidate_priority, is_lan, same_prefix};
use super::retransmit::{Retransmit, Step, new_txid};
use super::stun::{BindingRequest, StunError, StunMessage, attr, encode_binding_request, msg};
use crate::time::Timestamp;

/// A remote candidate, signaled or learned from a check (prflx).
#[derive(Debug, Clone)]
pub(super) struct RemoteCand {
    pub(super) addr: SocketAddr,
    pub(super) foundation: String,
    pub(super) priority: u32,
    pub(super) kind: CandidateKind,
}

/// RFC 8445 pair states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PairState {
    Frozen,
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

/// A check in flight.
#[derive(Debug, Clone)]
pub(super) struct Check {
    pub(super) txid: [u8; 12],
    bytes: Vec<u8>,
    rt: Retransmit,
    use_candidate: bool,
}

/// One candidate pair.
#[derive(Debug, Clone)]
pub(super) struct Pair {
    pub(super) local: usize,
    pub(super) remote: usize,
    pub(super) state: PairState,
    pub(super) nominated: bool,
    pub(super) check: Option<Check>,
    rtt_ms: u32,
}

/// RFC 8445 §6.1.2.3 pair priority with G the controlling side's candidate priority.
pub(super) fn pair_priority(g: u32, d: u32) -> u64 {
    let (g, d) = (u64::from(g), u64::from(d));
    (1u64 << 32) * g.min(d) + 2 * g.max(d) + u64::from(g > d)
}

impl IceAgent {
    fn local_priority(&self, lc: usize) -> u32 {
        let l = &self.locals[lc];
        candidate_priority(l.kind(), l.local_pref)
    }

    fn priority_of(&self, p: usize) -> u64 {
        let pair = &self.pairs[p];
        let l = self.local_priority(pair.local);
        let r = self.remotes[pair.remote].priority;
        if self.controlling {
            pair_priority(l, r)
        } else {
            pair_priority(r, l)
        }
    }

    fn same_subnet(&self, p: usize) -> bool {
        let pair = &self.pairs[p];
        let l = &self.locals[pair.local];
        let r = self.remotes[pair.remote].addr.ip();
        l.relay.is_none() && is_lan(l.addr.ip()) && same_prefix(l.addr.ip(), r, l.prefix_len)
    }

    /// GNS's `BIsPreferredRouteOver`: same subnet first, then pair priority.
    fn preferred_over(&self, a: usize, b: usize) -> bool {
        (self.same_subnet(a), self.priority_of(a)) > (self.same_subnet(b), self.priority_of(b))
    }

    fn sorted_pairs(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.pairs.len()).collect();
        v.sort_by_key(|&p| std::cmp::Reverse((self.same_subnet(p), self.priority_of(p))));
        v
    }

    /// Adds or updates a remote candidate (de-duplicated by address) and pairs it.
    pub(super) fn add_remote(&mut self, c: Candidate) -> usize {
        if let Some(i) = self.remotes.iter().position(|r| r.addr == c.addr) {
            let r = &mut self.remotes[i];
            if r.foundation != c.foundation {
                r.foundation = c.foundation;
                r.kind = c.kind;
                r.priority = c.priority;
            }
            return i;
        }
        self.remotes.push(RemoteCand {
            addr: c.addr,
            foundation: c.foundation,
            priority: c.priority,
            kind: c.kind,
        });
        let rc = self.remotes.len() - 1;
        for t in &mut self.turn {
            if t.relayed().is_some() {
                t.add_permission(c.addr.ip());
            }
        }
        for lc in 0..self.locals.len() {
            self.add_pair(lc, rc);
        }
        rc
    }

    /// Pairs a new local candidate with every remote one.
    pub(super) fn pair_local(&mut self, lc: usize) {
        for rc in 0..self.remotes.len() {
            self.add_pair(lc, rc);
        }
    }

    fn add_pair(&mut self, lc: usize, rc: usize) -> Option<usize> {
        if self.locals[lc].addr.is_ipv4() != self.remotes[rc].addr.is_ipv4() {
            return None;
        }
        if let Some(p) = self.find_pair(lc, rc) {
            return Some(p);
        }
        self.pairs.push(Pair {
            local: lc,
            remote: rc,
            state: PairState::Frozen,
            nominated: false,
            check: None,
            rtt_ms: 0,
        });
        Some(self.pairs.len() - 1)
    }

    fn find_pair(&self, lc: usize, rc: usize) -> Option<usize> {
        self.pairs
            .iter()
            .position(|p| p.local == lc && p.remote == rc)
    }

    fn can_check(&self) -> bool {
        self.remote_pwd.is_some() && self.remote_ufrag.is_some() && !self.remotes.is_empty()
    }

    /// Whether the next think could start a check.
    pub(super) fn has_think_work(&self) -> bool {
        self.can_check()
            && (!self.triggered.is_empty()
                || self
                    .pairs
                    .iter()
                    .any(|p| matches!(p.state, PairState::Waiting | PairState::Frozen)))
    }

    /// One 50 ms think: start at most one new check.
    pub(super) fn think(&mut self, now: Timestamp) {
        if !self.can_check() {
            return;
        }
        if let Some(p) = self.triggered.pop_front() {
            self.start_check(now, p);
            return;
        }
        let order = self.sorted_pairs();
        if let Some(&p) = order
            .iter()
            .find(|&&p| self.pairs[p].state == PairState::Waiting)
        {
            self.start_check(now, p);
            return;
        }
        let mut thawed: Vec<&str> = Vec::new();
        let mut to_wait = Vec::new();
        for &p in &order {
            let pair = &self.pairs[p];
            if pair.state != PairState::Frozen {
                continue;
            }
            let f = self.remotes[pair.remote].foundation.as_str();
            let busy = self.pairs.iter().any(|q| {
                q.state == PairState::InProgress && self.remotes[q.remote].foundation == f
            });
            if !busy && !thawed.contains(&f) {
                thawed.push(f);
                to_wait.push(p);
            }
        }
        for &p in &to_wait {
            self.pairs[p].state = PairState::Waiting;
        }
        if let Some(&p) = to_wait.first() {
            self.start_check(now, p);
        }
    }

    fn start_check(&mut self, now: Timestamp, p: usize) {
        let (Some(rufrag), Some(rpwd)) = (&self.remote_ufrag, &self.remote_pwd) else {
            return;
        };
        let username = format!("{}:{}", rufrag, self.local_ufrag);
        let lc = self.pairs[p].local;
        let kind_pref = CandidateKind::Prflx;
        let priority = candidate_priority(kind_pref, self.locals[lc].local_pref);
        let use_candidate = self.controlling && self.pairs[p].nominated;
        let txid = new_txid(&mut self.rng);
        let bytes = encode_binding_request(
            txid,
            &BindingRequest {
                username: username.as_bytes(),
                priority,
                controlling: self.controlling,
                tiebreaker: self.tiebreaker,
                use_candidate,
                key: rpwd.as_bytes(),
            },
        );
        let pair = &mut self.pairs[p];
        if pair.state != PairState::Succeeded {
            pair.state = PairState::InProgress;
        }
        pair.check = Some(Check {
            txid,
            bytes,
            rt: Retransmit::new(now),
            use_candidate,
        });
        self.drive_check(now, p);
    }

    fn drive_check(&mut self, now: Timestamp, p: usize) {
        loop {
            let Some(c) = &mut self.pairs[p].check else {
                return;
            };
            match c.rt.poll(now) {
                Step::Wait(_) => return,
                Step::Send => {
                    let bytes = c.bytes.clone();
                    let (lc, rc) = (self.pairs[p].local, self.pairs[p].remote);
                    let to = self.remotes[rc].addr;
                    self.send_from(lc, to, bytes);
                }
                Step::Failed => {
                    let pair = &mut self.pairs[p];
                    pair.check = None;
                    pair.nominated = pair.nominated && self.selected == Some(p);
                    if pair.state != PairState::Succeeded {
                        pair.state = PairState::Failed;
                    }
                    return;
                }
            }
        }
    }

    /// Retransmits and expires checks in flight.
    pub(super) fn drive_checks(&mut self, now: Timestamp) {
        for p in 0..self.pairs.len() {
            self.drive_check(now, p);
        }
    }

    /// The earliest retransmission deadline of the checks in flight.
    pub(super) fn checks_timeout(&self) -> Option<Timestamp> {
        self.pairs
            .iter()
            .filter_map(|p| p.check.as_ref().map(|c| c.rt.deadline()))
            .min()
    }

    /// A request or response that arrived on local candidate `lc` from `from`.
    pub(super) fn handle_check_message(
        &mut self,
        now: Timestamp,
        lc: usize,
        from: SocketAddr,
        m: &StunMessage<'_>,
    ) -> Result<(), StunError> {
        if m.msg_type == msg::BINDING_REQUEST {
            return self.handle_request(now, lc, from, m);
        }
        if m.is_response() {
            return self.handle_response(now, lc, m);
        }
        Err(StunError::Unexpected)
    }

    fn handle_request(
        &mut self,
        now: Timestamp,
        lc: usize,
        from: SocketAddr,
        m: &StunMessage<'_>,
    ) -> Result<(), StunError> {
        if let Some(user) = m.get(attr::USERNAME) {
            if self.remote_ufrag.is_none() {
                // GNS takes the remote ufrag from a check that arrives before the signal.
                let mut parts = user.splitn(2, |b| *b == b':');
                let head = parts.next().unwrap_or_default();
                let tail = parts.next().ok_or(StunError::WrongUsername)?;
                if head != self.local_ufrag.as_bytes() {
                    return Err(StunError::WrongUsername);
                }
                let tail = std::str::from_utf8(tail).map_err(|_| StunError::WrongUsername)?;
                m.verify_integrity(self.local_pwd.as_bytes())?;
                self.remote_ufrag = Some(tail.to_string());
            }
            let expected = self.expected_incoming_username().unwrap_or_default();
            if !user.starts_with(expected.as_bytes()) {
                return Err(StunError::WrongUsername);
            }
        }
        m.verify_integrity(self.local_pwd.as_bytes())?;
        self.respond(lc, from, m.txid);

        let rc = match self.remotes.iter().position(|r| r.addr == from) {
            Some(rc) => rc,
            None => {
                let priority = m.u32_attr(attr::PRIORITY).unwrap_or(0);
                self.add_remote(Candidate {
                    foundation: from.to_string(),
                    priority,
                    addr: from,
                    kind: CandidateKind::Prflx,
                })
            }
        };
        let Some(p) = self.add_pair(lc, rc) else {
            return Ok(());
        };
        if m.has(attr::USE_CANDIDATE) {
            self.on_use_candidate(now, p);
        } else if self.pairs[p].state != PairState::Succeeded {
            self.trigger(now, p);
        }
        Ok(())
    }

    /// GNS's triggered check: re-send an in-flight check with its txid, else queue the pair.
    fn trigger(&mut self, now: Timestamp, p: usize) {
        if let Some(c) = &mut self.pairs[p].check {
            c.rt.reset(now);
            return;
        }
        if self.pairs[p].state != PairState::Succeeded {
            self.pairs[p].state = PairState::Waiting;
        }
        if !self.triggered.contains(&p) {
            self.triggered.push_back(p);
        }
    }

    /// A request with USE-CANDIDATE (honoured whatever our role).
    fn on_use_candidate(&mut self, now: Timestamp, p: usize) {
        let better = match self.selected {
            None => true,
            Some(s) => s == p || self.priority_of(p) > self.priority_of(s),
        };
        if self.pairs[p].state == PairState::Succeeded && better {
            self.pairs[p].nominated = true;
            self.select(p);
            return;
        }
        let pending =
            self.pairs.iter().enumerate().any(|(i, q)| {
                i != p && q.nominated && q.check.is_some() && self.selected != Some(i)
            });
        if !pending {
            self.pairs[p].nominated = true;
            self.trigger(now, p);
        }
    }

    fn handle_response(
        &mut self,
        now: Timestamp,
        lc: usize,
        m: &StunMessage<'_>,
    ) -> Result<(), StunError> {
        let p = self
            .pairs
            .iter()
            .position(|p| p.local == lc && p.check.as_ref().is_some_and(|c| c.txid == m.txid))
            .ok_or(StunError::Unexpected)?;
        if let Some(pwd) = &self.remote_pwd {
            m.verify_integrity(pwd.as_bytes())?;
        }
        let Some(check) = self.pairs[p].check.take() else {
            return Err(StunError::Unexpected);
        };
        let rtt = now.saturating_since(check.rt.last_send).as_millis();
        let pair = &mut self.pairs[p];
        pair.state = PairState::Succeeded;
        pair.rtt_ms = u32::try_from(rtt).unwrap_or(u32::MAX).max(1);
        if pair.nominated && (check.use_candidate || !self.controlling) {
            self.select(p);
            return Ok(());
        }
        if self.controlling && !self.pairs[p].nominated {
            let best = (0..self.pairs.len())
                .filter(|&q| self.pairs[q].nominated)
                .reduce(|a, b| if self.preferred_over(b, a) { b } else { a });
            if best.is_none_or(|b| self.preferred_over(p, b)) {
                self.pairs[p].nominated = true;
                self.trigger(now, p);
            }
        }
        Ok(())
    }

    fn select(&mut self, p: usize) {
        if self.selected == Some(p) {
            return;
        }
        self.selected = Some(p);
        let pair = &self.pairs[p];
        let l = &self.locals[pair.local];
        let r = &self.remotes[pair.remote];
        self.events.push_back(IceEvent::Selected {
            local: l.socket,
            remote: r.addr,
            relayed: l.relay.is_some() || r.kind == CandidateKind::Relay,
            rtt_ms: pair.rtt_ms.max(1),
        });
    }
}
