//! The seed corpora of the P2P targets, built from real encodings, and the entry points run
//! over them. `SOCKWORKS_FUZZ_SEEDS=fuzz/corpus cargo test -p sockworks-engine --features
//! fuzzing seed_corpora` (from the repository root) writes them as libFuzzer names them.

use sha1::{Digest, Sha1};

use super::*;
use crate::proto::ice::candidate::{CandidateKind, candidate_priority, gns_foundation};
use crate::proto::ice::stun::{BindingRequest, StunWriter, encode_binding_request};
use crate::proto::p2p::rejection_signal;

/// One `rendezvous_signal` record.
fn record(ctl: u8, msg: &P2pRendezvous) -> Vec<u8> {
    let bytes = msg.encode_to_vec();
    let mut out = vec![ctl];
    out.extend_from_slice(&u16::try_from(bytes.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&bytes);
    out
}

fn signal_seeds() -> Vec<Vec<u8>> {
    let t = T0;
    // A peer connecting to us: its first signal is a request, which creates our acceptor.
    let mut peer = Signaling::new(
        t,
        SignalingConfig {
            local_id: 0x77,
            local_identity: "str:peer".to_owned(),
            remote_identity: None,
            initiator: true,
        },
    );
    peer.set_connect_request(
        t,
        connect_request(
            CryptInfoSigned::default(),
            CertificateSigned::default(),
            0,
            1,
        ),
    );
    peer.queue_ice(t, ice_auth("peerP"));
    let request = peer.poll_signal(t).unwrap();
    // A peer accepting our initiator's request: connect_ok, ack and ICE, to our id.
    let mut acc = Signaling::new(
        t,
        SignalingConfig {
            local_id: 0x79,
            local_identity: "str:peer".to_owned(),
            remote_identity: Some(LOCAL_IDENTITY.to_owned()),
            initiator: false,
        },
    );
    acc.set_remote(LOCAL_ID, LOCAL_IDENTITY.to_owned());
    acc.queue_connect_ok(t, P2pConnectOk::default());
    acc.queue_ice(t, ice_auth("peerQ"));
    let ok = acc.poll_signal(t).unwrap();
    acc.queue_ice(t, ice_auth("peerR"));
    let ice = acc.poll_signal(t + Duration::from_millis(200)).unwrap();
    let closed = acc.close_signal(4000, "bye");
    let no_conn = acc.no_connection_signal();
    let reject = rejection_signal("str:peer", Some(0x77), LOCAL_IDENTITY, LOCAL_ID, 4001, "no");
    vec![
        request.encode_to_vec(),
        record(0, &request),
        [record(0, &request), record(0x13, &request)].concat(),
        [record(0, &ok), record(5, &ice), record(0x22, &closed)].concat(),
        [record(1, &request), record(3, &no_conn)].concat(),
        [record(0, &ok), record(0x35, &ice), record(2, &ok)].concat(),
        record(0, &reject),
    ]
}

fn stun_seeds() -> Vec<Vec<u8>> {
    let (agent, sent) = stun_agent(false);
    let to = |s: &str| {
        sent.iter()
            .find(|(_, a, _)| *a == sa(s))
            .map(|(_, _, b)| StunMessage::decode(b).unwrap())
            .unwrap_or_else(|| panic!("agent sent nothing to {s}"))
    };
    let discovery = to(STUN_SERVER);
    let allocate = to(STUN_TURN);
    let check = to(STUN_REMOTE);

    let mut w = StunWriter::new(msg::BINDING_SUCCESS, discovery.txid);
    w.xor_addr(attr::XOR_MAPPED_ADDRESS, sa("203.0.113.5:50000"));
    let discovered = w.finish_with_fingerprint();

    let mut w = StunWriter::new(msg::ALLOCATE_REQUEST | msg::CLASS_ERROR, allocate.txid);
    w.attr(attr::ERROR_CODE, &[0, 0, 4, 1])
        .attr(attr::REALM, b"sockworks")
        .attr(attr::NONCE, b"n0nce");
    let challenge = w.finish_with_fingerprint();

    let answer = crate::proto::ice::stun::encode_binding_success(
        check.txid,
        sa(STUN_LOCAL),
        check.get(attr::USERNAME),
        STUN_REMOTE_PWD.as_bytes(),
    );

    let username = format!(
        "{}:{}",
        agent.local_ufrag(),
        ufrag_from_connection_id(STUN_REMOTE_ID)
    );
    let incoming = encode_binding_request(
        [9; 12],
        &BindingRequest {
            username: username.as_bytes(),
            priority: candidate_priority(CandidateKind::Prflx, 65535),
            controlling: true,
            tiebreaker: 7,
            use_candidate: true,
            key: agent.local_password().as_bytes(),
        },
    );

    let mut w = StunWriter::new(msg::DATA_INDICATION, [0; 12]);
    w.xor_addr(attr::XOR_PEER_ADDRESS, sa(STUN_REMOTE))
        .attr(attr::DATA, b"\x80gns data");
    let data_gns = w.finish();
    let mut w = StunWriter::new(msg::DATA_INDICATION, [0; 12]);
    w.xor_addr(attr::XOR_PEER_ADDRESS, sa(STUN_REMOTE))
        .attr(attr::DATA, &incoming);
    let data_stun = w.finish();

    vec![discovered, challenge, answer, incoming, data_gns, data_stun]
}

fn candidate_seeds() -> Vec<Vec<u8>> {
    let line = |addr: &str, server: Option<&str>, kind, pref| {
        Candidate {
            foundation: gns_foundation(sa(addr), server.map(sa), kind).to_string(),
            priority: candidate_priority(kind, pref),
            addr: sa(addr),
            kind,
        }
        .to_string()
    };
    let host = line("10.0.0.2:40002", None, CandidateKind::Host, 65535);
    let public = line("192.0.2.7:40003", None, CandidateKind::Host, 65534);
    let srflx = line(
        "203.0.113.9:50001",
        Some(STUN_SERVER),
        CandidateKind::Srflx,
        65535,
    );
    let relay = line(
        "198.18.0.2:49152",
        Some(STUN_TURN),
        CandidateKind::Relay,
        65535,
    );
    let v6 = line("[fd00::2]:52378", None, CandidateKind::Host, 65533);
    vec![
        host.clone().into_bytes(),
        format!("{srflx} raddr 10.0.0.2 rport 40002").into_bytes(),
        format!("{host}\n{public}\n{relay}\r\n").into_bytes(),
        v6.into_bytes(),
    ]
}

/// Runs every seed through its entry point; with `SOCKWORKS_FUZZ_SEEDS=<corpus dir>` also
/// writes them there (one file per seed, named by its SHA-1 as libFuzzer does).
#[test]
fn seed_corpora() {
    type Target = (&'static str, Vec<Vec<u8>>, fn(&[u8]));
    let sets: [Target; 3] = [
        ("rendezvous_signal", signal_seeds(), rendezvous_signal),
        ("stun", stun_seeds(), stun),
        ("ice_candidate", candidate_seeds(), ice_candidate),
    ];
    let dir = std::env::var_os("SOCKWORKS_FUZZ_SEEDS");
    for (target, seeds, run) in sets {
        for seed in &seeds {
            run(seed);
            if let Some(dir) = &dir {
                let dir = std::path::Path::new(dir).join(target);
                std::fs::create_dir_all(&dir).unwrap();
                let name: String = Sha1::digest(seed)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                std::fs::write(dir.join(name), seed).unwrap();
            }
        }
    }
}

/// The seeds reach what they were built for: the request creates an acceptor that answers,
/// the STUN answers are taken by the agent, the candidate lines parse.
#[test]
fn seeds_reach_the_state_they_target() {
    let seeds = stun_seeds();
    let (mut agent, _) = stun_agent(false);
    let now = T0 + Duration::from_millis(20);
    assert_eq!(
        agent.handle_stun(now, STUN_SOCKET, sa(STUN_SERVER), &seeds[0]),
        Ok(())
    );
    assert_eq!(
        agent.handle_stun(now, STUN_SOCKET, sa(STUN_TURN), &seeds[1]),
        Ok(())
    );
    assert_eq!(
        agent.handle_stun(now, STUN_SOCKET, sa(STUN_REMOTE), &seeds[2]),
        Ok(())
    );
    assert_eq!(
        agent.handle_stun(now, STUN_SOCKET, sa(STUN_REMOTE), &seeds[3]),
        Ok(())
    );
    assert!(
        agent
            .decapsulate(STUN_SOCKET, sa(STUN_TURN), &seeds[4])
            .is_some()
    );
    assert_eq!(agent.dropped(), 0);

    let signals = signal_seeds();
    let msg = parse_signal(&signals[0]).unwrap();
    assert!(matches!(
        route_signal(&msg, |_, _| false),
        SignalRoute::NewRequest { .. }
    ));
    for line in candidate_seeds() {
        let text = String::from_utf8(line).unwrap();
        for l in text.split('\n').filter(|l| !l.is_empty()) {
            Candidate::parse(l).unwrap();
        }
    }
}

/// Edge inputs for the three entry points.
#[test]
fn entry_points_accept_edge_inputs() {
    let inputs: [&[u8]; 6] = [
        &[],
        &[0xff],
        b"candidate:",
        b"candidate:1 0 udp -1 10.0.0.9 1 typ prflx\n\ncandidate:",
        &[
            0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ],
        &[0x0f, 0xff, 0xff, 0x42, 0x08, 1],
    ];
    for data in inputs {
        rendezvous_signal(data);
        stun(data);
        ice_candidate(data);
    }
}
