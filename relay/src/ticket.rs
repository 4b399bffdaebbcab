//! Relay auth tickets: what a game coordinator signs so that one client may reach one hosted
//! server through the relays (GNS's `SteamDatagramRelayAuthTicket`, spec §5.2, with its fields
//! and limits), and the signed envelope relays verify locally.
//!
//! Wire form (protobuf, proto2 semantics; field numbers are ours):
//!
//! ```text
//! RelayAuthTicket {                    SignedRelayAuthTicket {
//!   1 string  gameserver                 1 bytes   ticket      (RelayAuthTicket bytes)
//!   2 string  authorized_client          2 fixed64 key_id      (CA key id, engine ca::key_id)
//!   3 fixed32 public_ip (IPv4, BE)       3 bytes   signature   (Ed25519, 64 bytes)
//!   4 fixed64 expiry_unix              }
//!   5 bytes   routing   (≤ 128)
//!   6 uint32  app_id                   ExtraField {
//!   7 sint32  restrict_to_vport (-1)     1 string name (≤ 27 chars)
//!   8 ExtraField extra (≤ 16)            2 string  string_value (≤ 127)  ┐
//! }                                      3 sint64  int64_value           ├ exactly one
//!                                        4 fixed64 uint64_value          ┘
//!                                      }
//! ```
//!
//! The signature covers [`SIGNING_CONTEXT`] followed by the ticket bytes exactly as carried (no
//! re-encoding), so a ticket signature can never be confused with a certificate or crypt-info
//! signature made by the same CA key. A serialized envelope is at most
//! [`MAX_SIGNED_TICKET`] bytes (GNS's `k_cbSteamDatagramMaxSerializedTicket`).

use std::net::Ipv4Addr;

use prost::Message;
use sockworks_engine::crypto::TrustStore;
use sockworks_engine::crypto::keys::{
    IdentityKey, PUBLIC_KEY_LEN, SIGNATURE_LEN, ca_key_id, verify_signature,
};
use sockworks_engine::wire::identity::Identity;

/// Largest serialized signed ticket (GNS: `k_cbSteamDatagramMaxSerializedTicket`).
pub const MAX_SIGNED_TICKET: usize = sockworks_engine::wire::relay::MAX_SIGNED_TICKET;
/// Largest routing blob (`SteamDatagramHostedAddress::m_data`).
pub const MAX_ROUTING: usize = 128;
/// Most extra fields a ticket carries.
pub const MAX_EXTRA_FIELDS: usize = 16;
/// Longest extra-field name, in characters.
pub const MAX_EXTRA_NAME: usize = 27;
/// Longest extra-field string value, in bytes.
pub const MAX_EXTRA_STRING: usize = 127;
/// How far in the future a ticket may expire (relays refuse "much more than 24 h", §5.2).
pub const MAX_LIFETIME_SECS: u64 = 24 * 3600;
/// Domain separation prefix of the signed bytes.
pub const SIGNING_CONTEXT: &[u8] = b"sockworks relay auth ticket v1\0";

/// What a relay auth ticket says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayAuthTicket {
    /// The hosted server's GNS identity (`str:…`, `steamid:…`, …); required.
    pub gameserver: String,
    /// The client allowed to use the ticket; required.
    pub authorized_client: String,
    /// The client's public IPv4 address; `None` accepts any (GNS: 0).
    pub public_ip: Option<Ipv4Addr>,
    /// Unix seconds after which relays refuse the ticket for new sessions.
    pub expiry_unix: u64,
    /// The server's opaque routing blob ([`crate::routing::seal`]), at most 128 bytes.
    pub routing: Vec<u8>,
    /// The client's AppID.
    pub app_id: u32,
    /// Virtual port the ticket is good for; -1: any.
    pub restrict_to_vport: i32,
    /// Analytics fields (at most 16).
    pub extra: Vec<ExtraField>,
}

/// A named analytics value carried in a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraField {
    /// At most 27 characters.
    pub name: String,
    /// The value.
    pub value: ExtraValue,
}

/// The value of an [`ExtraField`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraValue {
    /// At most 127 bytes.
    String(String),
    /// Signed integer.
    Int64(i64),
    /// Unsigned integer.
    Uint64(u64),
}

/// Why a ticket could not be signed or was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// The bytes are not a signed ticket (or the ticket inside does not decode).
    #[error("malformed ticket")]
    Malformed,
    /// The signed ticket would be (or is) longer than 512 bytes.
    #[error("signed ticket is {0} bytes, more than 512")]
    TooLarge(usize),
    /// A field breaks a limit (identity, routing length, extra fields).
    #[error("invalid ticket field: {0}")]
    InvalidField(&'static str),
    /// No trusted CA has the key id the envelope names.
    #[error("ticket signed by unknown CA key {0}")]
    UnknownCa(u64),
    /// The signing CA key is revoked.
    #[error("ticket signed by revoked CA key {0}")]
    RevokedCa(u64),
    /// The CA's trust ended.
    #[error("CA key {0} is no longer trusted (expired)")]
    CaExpired(u64),
    /// The signature does not verify (forged or altered).
    #[error("ticket signature does not verify")]
    BadSignature,
    /// The ticket expired.
    #[error("ticket expired at {expiry} (now {now})")]
    Expired {
        /// Its expiry.
        expiry: u64,
        /// Our time.
        now: u64,
    },
    /// The ticket expires more than 24 h from now.
    #[error("ticket expiry {expiry} is more than 24 h after now ({now})")]
    TooFarAhead {
        /// Its expiry.
        expiry: u64,
        /// Our time.
        now: u64,
    },
}

/// The protobuf messages (field numbers in the module docs).
mod proto {
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub(super) struct Ticket {
        #[prost(string, optional, tag = "1")]
        pub(super) gameserver: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub(super) authorized_client: Option<String>,
        #[prost(fixed32, optional, tag = "3")]
        pub(super) public_ip: Option<u32>,
        #[prost(fixed64, optional, tag = "4")]
        pub(super) expiry_unix: Option<u64>,
        #[prost(bytes = "vec", optional, tag = "5")]
        pub(super) routing: Option<Vec<u8>>,
        #[prost(uint32, optional, tag = "6")]
        pub(super) app_id: Option<u32>,
        #[prost(sint32, optional, tag = "7")]
        pub(super) restrict_to_vport: Option<i32>,
        #[prost(message, repeated, tag = "8")]
        pub(super) extra: Vec<Extra>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub(super) struct Extra {
        #[prost(string, optional, tag = "1")]
        pub(super) name: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub(super) string_value: Option<String>,
        #[prost(sint64, optional, tag = "3")]
        pub(super) int64_value: Option<i64>,
        #[prost(fixed64, optional, tag = "4")]
        pub(super) uint64_value: Option<u64>,
    }

    #[derive(Clone, PartialEq, ::prost::Message)]
    pub(super) struct Signed {
        #[prost(bytes = "vec", optional, tag = "1")]
        pub(super) ticket: Option<Vec<u8>>,
        #[prost(fixed64, optional, tag = "2")]
        pub(super) key_id: Option<u64>,
        #[prost(bytes = "vec", optional, tag = "3")]
        pub(super) signature: Option<Vec<u8>>,
    }
}

impl RelayAuthTicket {
    /// Checks GNS's limits: both identities parse, routing ≤ 128 bytes, ≤ 16 extra fields with
    /// names ≤ 27 characters and string values ≤ 127 bytes.
    pub fn validate(&self) -> Result<(), TicketError> {
        if self.gameserver.parse::<Identity>().is_err() {
            return Err(TicketError::InvalidField("gameserver identity"));
        }
        if self.authorized_client.parse::<Identity>().is_err() {
            return Err(TicketError::InvalidField("authorized_client identity"));
        }
        if self.routing.len() > MAX_ROUTING {
            return Err(TicketError::InvalidField("routing longer than 128 bytes"));
        }
        if self.extra.len() > MAX_EXTRA_FIELDS {
            return Err(TicketError::InvalidField("more than 16 extra fields"));
        }
        for f in &self.extra {
            if f.name.is_empty() || f.name.chars().count() > MAX_EXTRA_NAME {
                return Err(TicketError::InvalidField("extra field name"));
            }
            if let ExtraValue::String(s) = &f.value
                && s.len() > MAX_EXTRA_STRING
            {
                return Err(TicketError::InvalidField("extra string longer than 127"));
            }
        }
        Ok(())
    }

    fn to_proto(&self) -> proto::Ticket {
        proto::Ticket {
            gameserver: Some(self.gameserver.clone()),
            authorized_client: Some(self.authorized_client.clone()),
            public_ip: self.public_ip.map(u32::from),
            expiry_unix: Some(self.expiry_unix),
            routing: Some(self.routing.clone()),
            app_id: Some(self.app_id),
            restrict_to_vport: (self.restrict_to_vport != -1).then_some(self.restrict_to_vport),
            extra: self
                .extra
                .iter()
                .map(|f| {
                    let mut e = proto::Extra {
                        name: Some(f.name.clone()),
                        ..Default::default()
                    };
                    match &f.value {
                        ExtraValue::String(s) => e.string_value = Some(s.clone()),
                        ExtraValue::Int64(v) => e.int64_value = Some(*v),
                        ExtraValue::Uint64(v) => e.uint64_value = Some(*v),
                    }
                    e
                })
                .collect(),
        }
    }

    fn from_proto(p: proto::Ticket) -> Result<Self, TicketError> {
        let extra = p
            .extra
            .into_iter()
            .map(|e| {
                let value = match (e.string_value, e.int64_value, e.uint64_value) {
                    (Some(s), None, None) => ExtraValue::String(s),
                    (None, Some(v), None) => ExtraValue::Int64(v),
                    (None, None, Some(v)) => ExtraValue::Uint64(v),
                    _ => return Err(TicketError::InvalidField("extra field value")),
                };
                Ok(ExtraField {
                    name: e.name.unwrap_or_default(),
                    value,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ticket = RelayAuthTicket {
            gameserver: p.gameserver.unwrap_or_default(),
            authorized_client: p.authorized_client.unwrap_or_default(),
            public_ip: p.public_ip.filter(|ip| *ip != 0).map(Ipv4Addr::from),
            expiry_unix: p
                .expiry_unix
                .ok_or(TicketError::InvalidField("no expiry"))?,
            routing: p.routing.unwrap_or_default(),
            app_id: p.app_id.unwrap_or(0),
            restrict_to_vport: p.restrict_to_vport.unwrap_or(-1),
            extra,
        };
        ticket.validate()?;
        Ok(ticket)
    }
}

/// The bytes a signature covers.
fn signed_message(ticket_bytes: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + ticket_bytes.len());
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(ticket_bytes);
    m
}

/// Serializes and signs `ticket` with the CA key `key` (the game coordinator's job). Fails if
/// a field breaks a limit or the envelope would exceed 512 bytes.
pub fn sign(ticket: &RelayAuthTicket, key: &IdentityKey) -> Result<Vec<u8>, TicketError> {
    ticket.validate()?;
    let bytes = ticket.to_proto().encode_to_vec();
    let signature = key.sign(&signed_message(&bytes));
    let signed = proto::Signed {
        ticket: Some(bytes),
        key_id: Some(ca_key_id(&key.public_bytes())),
        signature: Some(signature.to_vec()),
    }
    .encode_to_vec();
    if signed.len() > MAX_SIGNED_TICKET {
        return Err(TicketError::TooLarge(signed.len()));
    }
    Ok(signed)
}

/// A verified ticket and the facts a relay keys its session on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTicket {
    /// The ticket.
    pub ticket: RelayAuthTicket,
    /// The CA key id that signed it.
    pub key_id: u64,
    /// Its Ed25519 signature: unique per ticket (deterministic signatures, strict verify), so
    /// the relay uses it as the ticket's identity for "one live session per ticket".
    pub signature: [u8; SIGNATURE_LEN],
}

/// Verifies a signed ticket against the trusted (unrevoked, unexpired) CA keys of `trust` at
/// `unix_now`: size, envelope, signature over the exact ticket bytes, field limits, expiry
/// not passed and not more than 24 h ahead.
pub fn verify(
    bytes: &[u8],
    trust: &TrustStore,
    unix_now: u64,
) -> Result<RelayAuthTicket, TicketError> {
    verify_full(bytes, trust, unix_now).map(|v| v.ticket)
}

/// [`verify`], also returning the key id and signature.
pub fn verify_full(
    bytes: &[u8],
    trust: &TrustStore,
    unix_now: u64,
) -> Result<VerifiedTicket, TicketError> {
    if bytes.len() > MAX_SIGNED_TICKET {
        return Err(TicketError::TooLarge(bytes.len()));
    }
    let signed = proto::Signed::decode(bytes).map_err(|_| TicketError::Malformed)?;
    let (Some(body), Some(key_id), Some(sig)) = (signed.ticket, signed.key_id, signed.signature)
    else {
        return Err(TicketError::Malformed);
    };
    let signature: [u8; SIGNATURE_LEN] = sig
        .as_slice()
        .try_into()
        .map_err(|_| TicketError::BadSignature)?;
    let ca = trust
        .cas()
        .iter()
        .find(|c| c.key_id() == key_id)
        .ok_or(TicketError::UnknownCa(key_id))?;
    if trust.is_revoked(key_id) {
        return Err(TicketError::RevokedCa(key_id));
    }
    if ca.time_expiry.is_some_and(|e| u64::from(e) < unix_now) {
        return Err(TicketError::CaExpired(key_id));
    }
    verify_signature(&ca.public_key, &signed_message(&body), &signature)
        .map_err(|_| TicketError::BadSignature)?;
    let ticket = RelayAuthTicket::from_proto(
        proto::Ticket::decode(body.as_slice()).map_err(|_| TicketError::Malformed)?,
    )?;
    let expiry = ticket.expiry_unix;
    if expiry < unix_now {
        return Err(TicketError::Expired {
            expiry,
            now: unix_now,
        });
    }
    if expiry > unix_now.saturating_add(MAX_LIFETIME_SECS) {
        return Err(TicketError::TooFarAhead {
            expiry,
            now: unix_now,
        });
    }
    Ok(VerifiedTicket {
        ticket,
        key_id,
        signature,
    })
}

/// A signed ticket's contents without checking its signature: for the client's cache
/// (`ReceivedRelayAuthTicket`), which holds no CA keys; the relay verifies with [`verify`].
/// Size, envelope and field limits are still checked.
pub fn parse_unverified(bytes: &[u8]) -> Result<RelayAuthTicket, TicketError> {
    if bytes.len() > MAX_SIGNED_TICKET {
        return Err(TicketError::TooLarge(bytes.len()));
    }
    let signed = proto::Signed::decode(bytes).map_err(|_| TicketError::Malformed)?;
    let body = signed.ticket.ok_or(TicketError::Malformed)?;
    RelayAuthTicket::from_proto(
        proto::Ticket::decode(body.as_slice()).map_err(|_| TicketError::Malformed)?,
    )
}

/// A trust store holding `keys` (CA public keys), for callers that do not use the engine's.
pub fn trust_of(keys: &[[u8; PUBLIC_KEY_LEN]]) -> TrustStore {
    let mut t = TrustStore::new();
    for k in keys {
        t.add_ca(sockworks_engine::crypto::TrustedCa::new(*k));
    }
    t
}

#[cfg(test)]
#[path = "ticket/tests.rs"]
mod tests;
