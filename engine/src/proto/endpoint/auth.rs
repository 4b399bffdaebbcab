//! The endpoint's side of authentication: the identity and certificate it presents, the
//! trust store peers are judged by, and the wall-clock time the caller supplies for
//! certificate validity (the engine reads no clock).

use super::Endpoint;
use crate::crypto::TrustStore;
use crate::proto::handshake::LocalIdentity;
use crate::time::Timestamp;

impl Endpoint {
    /// Presents `identity` (e.g. [`LocalIdentity::with_ca_certificate`]) on connections made
    /// or accepted from now on; existing connections keep theirs, as in GNS.
    pub fn set_identity(&mut self, identity: LocalIdentity) {
        self.identity = identity;
    }

    /// The identity and certificate we present.
    pub fn identity(&self) -> &LocalIdentity {
        &self.identity
    }

    /// Replaces the trust store; handshakes still in progress use the new one.
    pub fn set_trust(&mut self, trust: TrustStore) {
        self.trust = trust;
    }

    /// The trust store peers' certificates are checked against.
    pub fn trust(&self) -> &TrustStore {
        &self.trust
    }

    /// Anchors wall-clock time: at monotonic `now` it is `unix_secs`. Call at start and
    /// whenever convenient (e.g. once a second) so clock adjustments are followed; without it
    /// no CA-signed certificate can be trusted ([`crate::crypto::TrustError::NoClock`]).
    pub fn set_unix_time(&mut self, now: Timestamp, unix_secs: u64) {
        self.wall_clock = Some((now, unix_secs));
    }

    /// Wall-clock Unix seconds at `now`, if anchored.
    pub fn unix_time(&self, now: Timestamp) -> Option<u64> {
        unix_time(self.wall_clock, now)
    }
}

/// `anchor` advanced to `now` (never backwards past the anchor).
pub(super) fn unix_time(anchor: Option<(Timestamp, u64)>, now: Timestamp) -> Option<u64> {
    let (at, secs) = anchor?;
    Some(secs + now.saturating_since(at).as_secs())
}
