//! `ConnectP2P`'s default signaling: the instance registers its identity with a
//! `sockworks-rendezvous` service ([`RendezvousConfig`]) and every signal to or from a peer
//! goes through it. Signals that arrive are fed to the instance as
//! `ReceivedP2PCustomSignal` would be, with a listen socket required for new requests (as
//! GNS's default signaling requires one).
//!
//! ```text
//!  ConnectP2P(identity) ─► RendezvousSignaling{to: identity} ─► client.send_signal ─► service
//!  service ─► client thread ─► Incoming::Signal ─► relay thread ─► received_signal(.., true)
//!  BeginAsyncRequestFakeIP ─► client.request_fake_ip ─► … ─► Incoming::FakeIp ─► fakeip::on_result
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sockworks_engine::wire::identity::Identity;
use sockworks_rendezvous::wire::FakeIpRefuseReason;
use sockworks_rendezvous::{ClientAuth, ClientConfig, FakeIpFailure, Incoming, RendezvousClient};

use crate::handles::Connection;
use crate::info::ConnectionInfo;
use crate::p2p::{ConnectionSignaling, SignalingRecvContext};
use crate::result::EResult;
use crate::sockets::{Instance, Sockets};

/// Where and how an instance registers for `ConnectP2P` (ours: GNS takes a signaling callback).
#[derive(Clone, Debug)]
pub struct RendezvousConfig {
    /// The service's address.
    pub server: SocketAddr,
    /// The CA-signed certificate and key that prove our identity to a service that requires
    /// them (`None`: register unauthenticated).
    pub auth: Option<ClientAuth>,
    /// How often the registration is renewed (the service may ask for less).
    pub reregister: Duration,
    /// How long a FakeIP request (`BeginAsyncRequestFakeIP`) is retried before it fails
    /// with `Timeout` (GNS: "several retries … may last several minutes").
    pub fake_ip_timeout: Duration,
}

impl RendezvousConfig {
    /// Unauthenticated registration with `server`, renewed every 10 s; FakeIP requests
    /// retried for 60 s.
    pub fn new(server: SocketAddr) -> Self {
        RendezvousConfig {
            server,
            auth: None,
            reregister: Duration::from_secs(10),
            fake_ip_timeout: Duration::from_secs(60),
        }
    }
}

/// The instance's client of the service.
pub(crate) struct Rendezvous {
    client: Arc<RendezvousClient>,
    fake_ip_timeout: Duration,
}

/// One connection's signals, addressed to its peer through the service.
struct RendezvousSignaling {
    client: Arc<RendezvousClient>,
    to: String,
}

impl ConnectionSignaling for RendezvousSignaling {
    fn send_signal(&self, _conn: Connection, _info: &ConnectionInfo, msg: &[u8]) -> bool {
        self.client.send_signal(&self.to, msg)
    }
}

/// The receive context of a signal from the service: a new request gets a signaling object
/// back to its sender; a refusal goes back the same way.
struct Context<'a> {
    client: &'a Arc<RendezvousClient>,
    from: &'a str,
}

impl SignalingRecvContext for Context<'_> {
    fn on_connect_request(
        &mut self,
        _conn: Connection,
        _peer: &Identity,
        _local_vport: i32,
    ) -> Option<Arc<dyn ConnectionSignaling>> {
        Some(Arc::new(RendezvousSignaling {
            client: self.client.clone(),
            to: self.from.to_owned(),
        }))
    }

    fn send_rejection_signal(&mut self, _peer: &Identity, msg: &[u8]) {
        self.client.send_signal(self.from, msg);
    }
}

/// Registers `identity` with the service and starts the thread that feeds what arrives to
/// the instance (held weakly: the thread ends with the instance).
pub(crate) fn start(
    config: &RendezvousConfig,
    identity: &Identity,
    instance: Weak<Instance>,
) -> std::io::Result<Rendezvous> {
    let mut cc = ClientConfig::new(config.server, identity.to_string());
    cc.auth.clone_from(&config.auth);
    cc.reregister = config.reregister;
    let (client, incoming) = RendezvousClient::start(cc)?;
    let client = Arc::new(client);
    let for_thread = client.clone();
    std::thread::Builder::new()
        .name("sockworks-rendezvous".into())
        .spawn(move || relay(&for_thread, &incoming, &instance))?;
    Ok(Rendezvous {
        client,
        fake_ip_timeout: config.fake_ip_timeout,
    })
}

fn relay(
    client: &Arc<RendezvousClient>,
    incoming: &std::sync::mpsc::Receiver<Incoming>,
    instance: &Weak<Instance>,
) {
    while let Ok(item) = incoming.recv() {
        let Some(inner) = instance.upgrade() else {
            return;
        };
        let sockets = Sockets { inner };
        match item {
            Incoming::Signal { from, payload } => {
                let mut ctx = Context {
                    client,
                    from: &from,
                };
                sockets.received_signal(&payload, &mut ctx, true);
            }
            Incoming::Unknown { to } => {
                tracing::debug!("rendezvous: {to} is not registered");
            }
            Incoming::FakeIp { ip, ports } => crate::fakeip::on_result(&sockets, Ok((ip, ports))),
            Incoming::FakeIpFailed { reason } => {
                tracing::warn!("rendezvous: FakeIP request failed: {reason:?}");
                crate::fakeip::on_result(&sockets, Err(fake_ip_failure(reason)));
            }
            other => tracing::warn!("rendezvous: {other:?}"),
        }
    }
}

/// The signaling object for a connection to `peer` through the instance's rendezvous service.
pub(crate) fn signaling_for(
    sockets: &Sockets,
    peer: &Identity,
) -> Option<Arc<dyn ConnectionSignaling>> {
    let r = sockets.shared().rendezvous.get()?;
    Some(Arc::new(RendezvousSignaling {
        client: r.client.clone(),
        to: peer.to_string(),
    }))
}

/// Asks the service for our FakeIP; false without a service.
pub(crate) fn request_fake_ip(sockets: &Sockets, num_ports: u8) -> bool {
    sockets
        .shared()
        .rendezvous
        .get()
        .is_some_and(|r| r.client.request_fake_ip(num_ports, r.fake_ip_timeout))
}

/// The `EResult` a failed FakeIP request reports.
fn fake_ip_failure(reason: FakeIpFailure) -> EResult {
    match reason {
        FakeIpFailure::Timeout => EResult::Timeout,
        FakeIpFailure::Refused(FakeIpRefuseReason::Full) => EResult::LimitExceeded,
        FakeIpFailure::Refused(FakeIpRefuseReason::BadRequest) => EResult::InvalidParam,
        FakeIpFailure::NotRegistered(_) => EResult::AccessDenied,
        _ => EResult::Fail,
    }
}
