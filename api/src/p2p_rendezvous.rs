//! `ConnectP2P`'s default signaling through a rendezvous service (wired in with the
//! `sockworks-rendezvous` client).

use std::sync::Arc;

use sockworks_engine::wire::identity::Identity;

use crate::p2p::ConnectionSignaling;
use crate::sockets::Sockets;

/// The signaling object for a connection to `peer` through the instance's rendezvous service.
pub(crate) fn signaling_for(
    _sockets: &Sockets,
    _peer: &Identity,
) -> Option<Arc<dyn ConnectionSignaling>> {
    None
}
