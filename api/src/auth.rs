//! Identity and certificates (GNS's `GetIdentity`, `ResetIdentity`, `GetCertificateRequest`,
//! `SetCertificate`, `InitAuthentication`, `GetAuthenticationStatus`): the instance's identity,
//! key and certificate, the trust store its shards judge peers by, and the authentication
//! status with its callback (202).
//!
//! ```text
//!  SocketsConfig{identity, trust, ca} ─► Auth (one lock) ─► Command::SetIdentity / SetTrust ─► every shard
//!  set_certificate ─► auth_cert::accept ─┘      │
//!  init_authentication ─► auth_client::Worker ──┘ (fetches from the CA service, then installs)
//!  status changes ─► Auth::events ─► run_callbacks ─► Callback_AuthStatusChanged
//! ```
//!
//! Connections snapshot the identity when they start (GNS): a new certificate applies to
//! connections made or accepted afterwards.

use std::sync::{Arc, Mutex};

use crossbeam_queue::SegQueue;
use prost::Message as _;
use sockworks_engine::crypto::keys::IdentityKey;
use sockworks_engine::crypto::{TrustStore, ca, pem};
use sockworks_engine::proto::end_reason;
use sockworks_engine::proto::handshake::LocalIdentity;
use sockworks_engine::shard::Command;
use sockworks_engine::wire::identity::Identity;
use sockworks_engine::wire::proto::CertificateSigned;

use crate::auth_cert;
use crate::auth_client::Worker;
use crate::auth_config::{AuthStatus, Availability, CaClientConfig, TrustConfig};
use crate::handles::{Connection, ListenSocket};
use crate::shared::Shared;
use crate::sockets::Sockets;
use crate::sync::{lock, read};

/// GNS's status without a certificate authority.
const NO_CA: &str = "No certificate authority";

/// The instance's identity, key, certificate and trust.
#[derive(Debug)]
pub(crate) struct AuthState {
    /// Our identity (`None`: invalid, after `ResetIdentity(NULL)`, until `SetCertificate`).
    identity: Option<Identity>,
    /// The instance key (seed), once there is one: made for a configured identity or by
    /// `GetCertificateRequest`, or taken from a certificate bundle. Anonymous instances leave
    /// each shard its own throw-away key.
    key: Option<[u8; 32]>,
    /// Our CA-signed certificate, if one is installed.
    cert: Option<CertificateSigned>,
    /// Its `time_expiry` (Unix seconds).
    cert_expiry: Option<u64>,
    trust: TrustStore,
    status: AuthStatus,
    /// Bumped by `ResetIdentity`: a fetch started before it does not install.
    generation: u64,
}

/// What the instance shares about authentication.
#[derive(Debug)]
pub(crate) struct Auth {
    state: Mutex<AuthState>,
    /// Status changes waiting for `run_callbacks`.
    pub events: SegQueue<AuthStatus>,
    /// The CA service, if configured.
    ca: Option<CaClientConfig>,
    /// The fetch thread (started on first use).
    pub worker: Arc<Worker>,
}

/// 32 fresh bytes from the OS: an identity key.
fn new_seed() -> Result<[u8; 32], String> {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(|e| format!("no OS randomness for a key: {e}"))?;
    Ok(s)
}

impl Auth {
    /// The start state: `identity` (`None`: anonymous localhost, as GNS's Init(NULL)).
    pub(crate) fn new(
        identity: Option<Identity>,
        trust: &TrustConfig,
        ca: Option<CaClientConfig>,
    ) -> Self {
        let status = AuthStatus::new(
            if ca.is_some() {
                Availability::NeverTried
            } else {
                Availability::CannotTry
            },
            if ca.is_some() { "Not tried yet" } else { NO_CA },
        );
        Auth {
            state: Mutex::new(AuthState {
                identity: Some(identity.unwrap_or_else(Identity::localhost)),
                key: None,
                cert: None,
                cert_expiry: None,
                trust: trust.store(),
                status,
                generation: 0,
            }),
            events: SegQueue::new(),
            ca,
            worker: Arc::default(),
        }
    }

    /// Commands that give a starting shard our trust and (a named) identity.
    pub(crate) fn start_commands(&self, shards: usize) -> Result<Vec<Command>, String> {
        let mut st = lock(&self.state);
        let mut cmds: Vec<Command> = (0..shards)
            .map(|_| Command::SetTrust {
                trust: Box::new(st.trust.clone()),
            })
            .collect();
        if let Some(id) = st.identity.clone().filter(|i| *i != Identity::localhost()) {
            let seed = new_seed()?;
            st.key = Some(seed);
            cmds.extend((0..shards).map(|_| Command::SetIdentity {
                identity: Box::new(LocalIdentity::with_identity(seed, id.clone())),
            }));
        }
        Ok(cmds)
    }
}

impl Auth {
    /// Our identity, key and CA-signed certificate, when one is installed (what a hosted
    /// server signs its game-coordinator login with).
    pub(crate) fn signing_material(&self) -> Option<(Identity, [u8; 32], CertificateSigned)> {
        let st = lock(&self.state);
        Some((st.identity.clone()?, st.key?, st.cert.clone()?))
    }
}

/// Sets the status; a change is queued for the callback.
pub(crate) fn set_status(sh: &Shared, status: AuthStatus) {
    let mut st = lock(&sh.auth.state);
    set_status_locked(sh, &mut st, status);
}

fn set_status_locked(sh: &Shared, st: &mut AuthState, status: AuthStatus) {
    if st.status != status {
        tracing::info!("authentication status {:?}: {}", status.avail, status.debug);
        st.status = status.clone();
        sh.auth.events.push(status);
        sh.activity.bump();
    }
}

/// Gives every shard `make()`'s identity.
fn push_identity(sh: &Shared, make: impl Fn() -> LocalIdentity) {
    for i in 0..sh.shards.len() {
        sh.send(
            i,
            Command::SetIdentity {
                identity: Box::new(make()),
            },
        );
    }
}

/// Checks and installs a certificate; returns the Unix time to renew it at (2/3 of its
/// lifetime).
fn install(sh: &Shared, input: &[u8], generation: Option<u64>) -> Result<u64, String> {
    let signed = auth_cert::parse(input)?;
    let mut st = lock(&sh.auth.state);
    if generation.is_some_and(|g| g != st.generation) {
        return Err("the identity was reset while the certificate was fetched".to_owned());
    }
    let now = sh.clock.unix_secs();
    let a = auth_cert::accept(signed, st.key, st.identity.as_ref(), &st.trust, now)?;
    let (seed, cert) = (a.seed, a.cert.clone());
    push_identity(sh, || {
        // invariant: `accept` built this very identity from the same seed and cert.
        LocalIdentity::with_certificate(seed, cert.clone(), a.identity.clone())
    });
    st.key = Some(a.seed);
    st.cert = Some(a.cert);
    st.cert_expiry = Some(u64::from(a.time_expiry));
    st.identity = Some(a.identity);
    set_status_locked(sh, &mut st, AuthStatus::new(Availability::Current, "OK"));
    let (created, expiry) = (u64::from(a.time_created), u64::from(a.time_expiry));
    let lifetime = expiry.saturating_sub(created.min(now));
    Ok(created.min(now) + lifetime * 2 / 3)
}

/// A certificate the CA service returned for a request made at `generation`.
pub(crate) fn install_fetched(sh: &Shared, body: &[u8], generation: u64) -> Result<u64, String> {
    install(sh, body, Some(generation))
}

/// The request the fetch thread posts (PEM), the generation it belongs to, and whether a
/// certificate is already current (a renewal).
pub(crate) fn fetch_request(sh: &Shared) -> Result<(String, u64, bool), String> {
    let mut st = lock(&sh.auth.state);
    let request = request_locked(&mut st)?;
    let renewing = st.cert.is_some();
    if !renewing {
        set_status_locked(
            sh,
            &mut st,
            AuthStatus::new(Availability::Attempting, "Requesting certificate"),
        );
    }
    Ok((
        pem::write_cert_request_pem(&request),
        st.generation,
        renewing,
    ))
}

/// `GetCertificateRequest`'s request, making the instance key if there is none yet.
fn request_locked(
    st: &mut AuthState,
) -> Result<sockworks_engine::wire::proto::CertificateRequest, String> {
    let seed = match st.key {
        Some(k) => k,
        None => {
            let k = new_seed()?;
            st.key = Some(k);
            k
        }
    };
    let public = IdentityKey::from_seed(seed).public_bytes();
    let identity = st.identity.clone().unwrap_or(Identity::Invalid);
    Ok(ca::make_request(&identity, &public))
}

impl Sockets {
    /// `GetIdentity`: our identity; localhost (`ip:::1`) when none was given, as open-source
    /// GNS; `None` after `ResetIdentity(None)` until `SetCertificate` names one.
    pub fn get_identity(&self) -> Option<Identity> {
        lock(&self.shared().auth.state).identity.clone()
    }

    /// `ResetIdentity`: closes every connection and listen socket (reason `AppException_Max`,
    /// 2999, as GNS's `KillConnections`), discards the key and certificate, and takes
    /// `identity` (`None`: invalid until `SetCertificate`; peers then see an anonymous
    /// localhost certificate, as open-source GNS presents).
    pub fn reset_identity(&self, identity: Option<&Identity>) {
        let sh = self.shared();
        let listen: Vec<u32> = read(&sh.listen).keys().copied().collect();
        for l in listen {
            self.close_listen_socket(ListenSocket(l));
        }
        for shard in &sh.shards {
            let open: Vec<u32> = read(&shard.conns)
                .values()
                .filter(|r| !r.is_closed())
                .map(|r| r.handle.0)
                .collect();
            for id in open {
                let reason = i32::try_from(end_reason::APP_EXCEPTION_MAX).unwrap_or(2999);
                self.close_connection(Connection(id), reason, "ResetIdentity", false);
            }
        }
        sh.auth.worker.schedule(None);
        let mut st = lock(&sh.auth.state);
        st.generation += 1;
        st.cert = None;
        st.cert_expiry = None;
        st.key = None;
        st.identity = identity.cloned();
        let seed = match new_seed() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("ResetIdentity: {e}");
                return;
            }
        };
        let presented = identity.cloned().unwrap_or_else(Identity::localhost);
        if presented != Identity::localhost() {
            st.key = Some(seed);
        }
        push_identity(sh, || LocalIdentity::with_identity(seed, presented.clone()));
        let status = match sh.auth.ca {
            Some(_) => AuthStatus::new(Availability::NeverTried, "Identity reset"),
            None => AuthStatus::new(Availability::CannotTry, NO_CA),
        };
        set_status_locked(sh, &mut st, status);
    }

    /// `GetCertificateRequest`: a serialized `CMsgSteamDatagramCertificateRequest` for our key
    /// (made now if there is none; kept for `SetCertificate`) and identity, for a CA
    /// (`sockworks-cert issue --request`, or the CA service).
    pub fn get_certificate_request(&self) -> Result<Vec<u8>, String> {
        let mut st = lock(&self.shared().auth.state);
        Ok(request_locked(&mut st)?.encode_to_vec())
    }

    /// `SetCertificate`: installs a CA-signed certificate: the raw
    /// `CMsgSteamDatagramCertificateSigned` (as GNS takes it) or our PEM text, with the key
    /// from `GetCertificateRequest` or in `private_key_data` (`sockworks-cert issue
    /// --with-private-key`). Refused, with the reason, when it certifies another key, names
    /// another identity than ours, is not for AppID 0, has expired, or (when we trust some
    /// CAs) fails our own trust store. New connections present it.
    pub fn set_certificate(&self, cert: &[u8]) -> Result<(), String> {
        let sh = &self.inner.shared;
        let renew_at = install(sh, cert, None)?;
        if sh.auth.ca.is_some() {
            sh.auth.worker.schedule(Some(renew_at));
        }
        Ok(())
    }

    /// `InitAuthentication`: with a CA service configured, starts fetching our certificate in
    /// the background (unless one is current or a fetch is under way) and returns the status
    /// (`Attempting`); without one, `CannotTry` (or `Current` after a `SetCertificate`).
    pub fn init_authentication(&self) -> Availability {
        let sh = &self.inner.shared;
        let avail = lock(&sh.auth.state).status.avail;
        let Some(ca) = sh.auth.ca.clone() else {
            return avail;
        };
        if matches!(avail, Availability::Current | Availability::Attempting) {
            return avail;
        }
        // Attempting before the thread may finish (and report Current or Failed).
        set_status(
            sh,
            AuthStatus::new(Availability::Attempting, "Requesting certificate"),
        );
        if !sh.auth.worker.request(sh, ca) && !sh.auth.worker.busy() {
            set_status(
                sh,
                AuthStatus::new(
                    Availability::Failed,
                    "could not start the certificate fetch",
                ),
            );
        }
        lock(&sh.auth.state).status.avail
    }

    /// `GetAuthenticationStatus`: the availability and its reason.
    pub fn get_authentication_status(&self) -> AuthStatus {
        let sh = self.shared();
        let st = lock(&sh.auth.state);
        // A certificate that ran out before a renewal arrived: GNS's "Previously".
        let expired = st.cert_expiry.is_some_and(|e| e <= sh.clock.unix_secs());
        if expired
            && matches!(
                st.status.avail,
                Availability::Current | Availability::Retrying
            )
        {
            return AuthStatus::new(Availability::Previously, "Certificate expired");
        }
        st.status.clone()
    }

    /// Ours, beyond GNS: replaces the trust store (trusted CAs, revocations, policy); new
    /// handshakes use it, established connections stay.
    pub fn set_trust(&self, trust: &TrustConfig) {
        let sh = self.shared();
        let store = trust.store();
        lock(&sh.auth.state).trust = store.clone();
        for i in 0..sh.shards.len() {
            sh.send(
                i,
                Command::SetTrust {
                    trust: Box::new(store.clone()),
                },
            );
        }
    }

    /// Delivers queued authentication-status changes to the global callback (202).
    pub(crate) fn run_auth_callbacks(&self) {
        let sh = self.shared();
        let queued = sh.auth.events.len();
        if queued == 0 {
            return;
        }
        let cb = read(&sh.global).on_auth_status.clone();
        for _ in 0..queued {
            let Some(ev) = sh.auth.events.pop() else {
                break;
            };
            if let Some(cb) = &cb {
                cb(&ev);
            }
        }
    }
}
