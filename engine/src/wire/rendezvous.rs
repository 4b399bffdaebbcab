//! `CMsgSteamNetworkingP2PRendezvous`: the one message every P2P signal carries (spec
//! `gns-p2p-certs.md` §3.2), hand-written with `prost` derive like [`super::proto`].
//!
//! A signal is the raw serialized message: no envelope, version byte or length prefix. Fields
//! are declared in ascending tag order, the order GNS serializes them (prost also encodes by
//! ascending tag), so our encodings are byte-identical to GNS's. Every field is `optional` as
//! in the `.proto`: `to_connection_id` absent (a `connect_request` signal) differs from zero,
//! and `ice_enabled` absent makes a GNS peer tear down its ICE transport.
//!
//! ```text
//!  P2pRendezvous
//!   ├─ 4 connect_request   P2pConnectRequest { crypt, cert, to/from_virtual_port, from_fakeip }
//!   ├─ 5 connect_ok        P2pConnectOk      { crypt, cert }
//!   ├─ 6 connection_closed P2pConnectionClosed { debug, reason_code }
//!   ├─ 13 reliable_messages [ReliableMessage { ice: IceRendezvous }]   (ICE only)
//!   └─ 15 application_messages [ApplicationMessage]                    (FakeUDP only)
//! ```
//!
//! GNS: `steamnetworkingsockets_messages.proto` (`CMsgSteamNetworkingP2PRendezvous`,
//! `CMsgICERendezvous`, `CMsgICECandidate`).

#![allow(
    clippy::derive_partial_eq_without_eq,
    reason = "prost's derive emits impls that clippy cannot see through; the structs are plain data"
)]

use super::proto::{CertificateSigned, CryptInfoSigned};

/// `CMsgSteamNetworkingP2PRendezvous`: one signal.
#[derive(Clone, PartialEq, prost::Message)]
pub struct P2pRendezvous {
    /// The receiver's connection id; absent in signals carrying `connect_request` and in
    /// `connection_closed` signals when the receiver's id is unknown.
    #[prost(fixed32, optional, tag = "1")]
    pub to_connection_id: Option<u32>,
    /// SDR routes (Steam only; never written, ignored).
    #[prost(bytes = "vec", optional, tag = "2")]
    pub sdr_routes: Option<Vec<u8>>,
    /// SDR route revision ack (Steam only; never written, ignored).
    #[prost(uint32, optional, tag = "3")]
    pub ack_peer_routes_revision: Option<u32>,
    /// The initiator's request, in every signal it sends while connecting.
    #[prost(message, optional, tag = "4")]
    pub connect_request: Option<P2pConnectRequest>,
    /// The acceptor's answer, after the application accepted.
    #[prost(message, optional, tag = "5")]
    pub connect_ok: Option<P2pConnectOk>,
    /// The sender closed (or has no such connection, reason 9999).
    #[prost(message, optional, tag = "6")]
    pub connection_closed: Option<P2pConnectionClosed>,
    /// `true` while the sender has an ICE transport; absent or `false` ends ICE for good.
    #[prost(bool, optional, tag = "7")]
    pub ice_enabled: Option<bool>,
    /// The sender's identity string (required).
    #[prost(string, optional, tag = "8")]
    pub from_identity: Option<String>,
    /// The sender's connection id.
    #[prost(fixed32, optional, tag = "9")]
    pub from_connection_id: Option<u32>,
    /// The receiver's identity string, when the sender knows it.
    #[prost(string, optional, tag = "10")]
    pub to_identity: Option<String>,
    /// Highest reliable message id received in order (0: none yet).
    #[prost(uint32, optional, tag = "11")]
    pub ack_reliable_msg: Option<u32>,
    /// Id of the first entry of `reliable_messages`.
    #[prost(uint32, optional, tag = "12")]
    pub first_reliable_msg: Option<u32>,
    /// Consecutive reliable messages starting at `first_reliable_msg`.
    #[prost(message, repeated, tag = "13")]
    pub reliable_messages: Vec<ReliableMessage>,
    /// SDR hosted-server ticket (Steam only; never written, ignored).
    #[prost(bytes = "vec", optional, tag = "14")]
    pub hosted_server_ticket: Option<Vec<u8>>,
    /// Application messages carried in the signal (GNS writes them only for FakeUDP ports).
    #[prost(message, repeated, tag = "15")]
    pub application_messages: Vec<ApplicationMessage>,
}

/// `CMsgSteamNetworkingP2PRendezvous.ConnectRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct P2pConnectRequest {
    /// The initiator's signed crypt info (required).
    #[prost(message, optional, tag = "6")]
    pub crypt: Option<CryptInfoSigned>,
    /// The initiator's certificate (required).
    #[prost(message, optional, tag = "7")]
    pub cert: Option<CertificateSigned>,
    /// The virtual port wanted at the receiver; written when `>= 0`.
    #[prost(uint32, optional, tag = "9")]
    pub to_virtual_port: Option<u32>,
    /// The initiator's local virtual port; written when `>= 0`.
    #[prost(uint32, optional, tag = "10")]
    pub from_virtual_port: Option<u32>,
    /// The initiator's FakeIP (Steam only).
    #[prost(string, optional, tag = "11")]
    pub from_fakeip: Option<String>,
}

/// `CMsgSteamNetworkingP2PRendezvous.ConnectOK`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct P2pConnectOk {
    /// The acceptor's signed crypt info.
    #[prost(message, optional, tag = "5")]
    pub crypt: Option<CryptInfoSigned>,
    /// The acceptor's certificate.
    #[prost(message, optional, tag = "6")]
    pub cert: Option<CertificateSigned>,
}

/// `CMsgSteamNetworkingP2PRendezvous.ConnectionClosed`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct P2pConnectionClosed {
    /// Human-readable reason.
    #[prost(string, optional, tag = "5")]
    pub debug: Option<String>,
    /// `ESteamNetConnectionEnd` code; 9999 means "no connection, do not reply".
    #[prost(uint32, optional, tag = "6")]
    pub reason_code: Option<u32>,
}

/// `CMsgSteamNetworkingP2PRendezvous.ReliableMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReliableMessage {
    /// The ICE message (the only kind GNS sends reliably).
    #[prost(message, optional, tag = "1")]
    pub ice: Option<IceRendezvous>,
}

/// `CMsgSteamNetworkingP2PRendezvous.ApplicationMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ApplicationMessage {
    /// Payload.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub data: Option<Vec<u8>>,
    /// Message number.
    #[prost(uint64, optional, tag = "2")]
    pub msg_num: Option<u64>,
    /// `k_nSteamNetworkingSend_*` flags.
    #[prost(uint32, optional, tag = "3")]
    pub flags: Option<u32>,
    /// Lane index.
    #[prost(uint32, optional, tag = "4")]
    pub lane_idx: Option<u32>,
}

/// `CMsgICERendezvous`: one ICE signaling message (a candidate or the password fragment).
#[derive(Clone, PartialEq, prost::Message)]
pub struct IceRendezvous {
    /// A local candidate to try.
    #[prost(message, optional, tag = "1")]
    pub add_candidate: Option<IceCandidate>,
    /// The sender's ICE credentials.
    #[prost(message, optional, tag = "2")]
    pub auth: Option<IceAuth>,
}

/// `CMsgICERendezvous.Auth`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IceAuth {
    /// The sender's ICE password (its ufrag travels in STUN `USERNAME`).
    #[prost(string, optional, tag = "1")]
    pub pwd_frag: Option<String>,
}

/// `CMsgICECandidate`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IceCandidate {
    /// The SDP `candidate:` attribute line.
    #[prost(string, optional, tag = "3")]
    pub candidate: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Spec §3.2: the client's complete 48-byte ack-only signal.
    const ACK_ONLY: &str = concat!(
        "0dbcaedfd6",
        "3801",
        "420f",
        "7374723a706565725f636c69656e74",
        "4d52f327de",
        "520f",
        "7374723a706565725f736572766572",
        "5803",
    );

    fn ack_only() -> P2pRendezvous {
        P2pRendezvous {
            to_connection_id: Some(0xd6df_aebc),
            ice_enabled: Some(true),
            from_identity: Some("str:peer_client".into()),
            from_connection_id: Some(0xde27_f352),
            to_identity: Some("str:peer_server".into()),
            ack_reliable_msg: Some(3),
            ..Default::default()
        }
    }

    #[test]
    fn ack_only_signal_decodes_from_gns_bytes() {
        let bytes = hex::decode(ACK_ONLY).unwrap();
        assert_eq!(bytes.len(), 48);
        assert_eq!(P2pRendezvous::decode(&bytes[..]).unwrap(), ack_only());
    }

    #[test]
    fn ack_only_signal_encodes_to_gns_bytes() {
        assert_eq!(hex::encode(ack_only().encode_to_vec()), ACK_ONLY);
    }

    #[test]
    fn every_field_round_trips() {
        let msg = P2pRendezvous {
            to_connection_id: Some(1),
            sdr_routes: Some(vec![1, 2]),
            ack_peer_routes_revision: Some(3),
            connect_request: Some(P2pConnectRequest {
                crypt: Some(CryptInfoSigned::default()),
                cert: Some(CertificateSigned::default()),
                to_virtual_port: Some(0),
                from_virtual_port: Some(7),
                from_fakeip: Some("ip:169.254.1.2:2000".into()),
            }),
            connect_ok: Some(P2pConnectOk::default()),
            connection_closed: Some(P2pConnectionClosed {
                debug: Some("x".into()),
                reason_code: Some(9999),
            }),
            ice_enabled: Some(false),
            from_identity: Some("str:a".into()),
            from_connection_id: Some(2),
            to_identity: Some("str:b".into()),
            ack_reliable_msg: Some(0),
            first_reliable_msg: Some(1),
            reliable_messages: vec![ReliableMessage {
                ice: Some(IceRendezvous {
                    add_candidate: Some(IceCandidate {
                        candidate: Some("candidate:1 0 udp 1 192.0.2.2 1 typ host".into()),
                    }),
                    auth: Some(IceAuth {
                        pwd_frag: Some("hgx6g".into()),
                    }),
                }),
            }],
            hosted_server_ticket: Some(vec![9]),
            application_messages: vec![ApplicationMessage {
                data: Some(b"hi".to_vec()),
                msg_num: Some(5),
                flags: Some(8),
                lane_idx: Some(0),
            }],
        };
        let bytes = msg.encode_to_vec();
        assert_eq!(P2pRendezvous::decode(&bytes[..]).unwrap(), msg);
        // Tags come out ascending: 1 (fixed32) first, 15 (length-delimited) last.
        assert_eq!(bytes[0], 0x0d);
    }
}
