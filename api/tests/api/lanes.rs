//! Connection lanes (the `game-networking-sockets` crate's lane_tests, ported): messages
//! arrive on the lane they were sent on, in order per lane, numbered per lane; real-time
//! status reports each configured lane; a lower priority value goes first.

use crate::common::*;
use sockworks::{ConfigValue, ConnectionState, EResult, LaneStatus, OutMessage, send_flags};

#[test]
fn messages_arrive_on_their_lane_in_order() {
    let l = link(2, &[]);
    // High priority light weight, then lower priorities heavier.
    assert_eq!(
        l.client
            .configure_connection_lanes(l.c_conn, &[0, 10, 20], &[1, 5, 10]),
        EResult::Ok
    );
    const LANES: usize = 3;
    for i in 0..30usize {
        let lane = (i % LANES) as u16;
        let r = l.client.send_messages(vec![OutMessage {
            conn: l.c_conn,
            data: format!("Message {i}").into_bytes(),
            flags: send_flags::RELIABLE,
            lane,
        }]);
        assert_eq!(r, vec![(i / LANES) as i64 + 1], "numbered per lane");
    }
    let got = recv_n(&l.server, l.s_conn, 30);
    assert_eq!(got.len(), 30);
    let mut per_lane = vec![Vec::new(); LANES];
    for m in &got {
        let text = String::from_utf8(m.data.clone()).unwrap();
        let i: usize = text.trim_start_matches("Message ").parse().unwrap();
        assert_eq!(usize::from(m.lane), i % LANES, "{text} on its lane");
        assert_eq!(m.message_number, (i / LANES) as i64 + 1);
        per_lane[usize::from(m.lane)].push(i);
    }
    for (lane, idx) in per_lane.iter().enumerate() {
        let want: Vec<usize> = (0..30).filter(|i| i % LANES == lane).collect();
        assert_eq!(*idx, want, "lane {lane}: all ten, in order");
    }
}

#[test]
fn real_time_status_reports_each_lane() {
    let l = link(1, &[]);
    // The server configures its lanes once connected, the client its own: each direction
    // has its own lanes.
    assert_eq!(
        l.server
            .configure_connection_lanes(l.s_conn, &[0, 10], &[1, 5]),
        EResult::Ok
    );
    assert_eq!(
        l.client
            .configure_connection_lanes(l.c_conn, &[0, 10], &[1, 5]),
        EResult::Ok
    );
    let mut readings = Vec::new();
    for i in 0..100usize {
        let r = l.client.send_messages(vec![OutMessage {
            conn: l.c_conn,
            data: format!("Lane Test Message {i}").into_bytes(),
            flags: send_flags::RELIABLE,
            lane: (i % 2) as u16,
        }]);
        assert!(r[0] > 0);
        if i % 20 == 0 {
            let mut lanes = [LaneStatus::default(); 2];
            let st = l
                .server
                .get_connection_real_time_status(l.s_conn, &mut lanes)
                .unwrap();
            readings.push((st, lanes));
        }
    }
    assert_eq!(recv_n(&l.server, l.s_conn, 100).len(), 100);
    assert_eq!(readings.len(), 5);
    for (st, lanes) in &readings {
        assert_eq!(st.state, Some(ConnectionState::Connected));
        assert!(st.ping >= -1);
        for lane in lanes {
            assert!(lane.pending_reliable >= 0 && lane.pending_unreliable >= 0);
            assert!(lane.sent_unacked_reliable >= 0 && lane.queue_time_usec >= 0);
        }
    }
    // Fewer lanes than configured is fine; more is not.
    let mut one = [LaneStatus::default(); 1];
    assert!(
        l.client
            .get_connection_real_time_status(l.c_conn, &mut one)
            .is_ok()
    );
    let mut three = [LaneStatus::default(); 3];
    assert_eq!(
        l.client
            .get_connection_real_time_status(l.c_conn, &mut three)
            .err(),
        Some(EResult::InvalidParam)
    );
}

#[test]
fn queued_bytes_show_on_their_lane() {
    // A slow send rate keeps a backlog on lane 1 long enough to see it.
    let l = link(
        1,
        &[
            ConfigValue::SendRateMin(64 * 1024),
            ConfigValue::SendRateMax(64 * 1024),
        ],
    );
    assert_eq!(
        l.client.configure_connection_lanes(l.c_conn, &[0, 0], &[]),
        EResult::Ok
    );
    for _ in 0..64 {
        let r = l.client.send_messages(vec![OutMessage {
            conn: l.c_conn,
            data: vec![0; 1000],
            flags: send_flags::RELIABLE,
            lane: 1,
        }]);
        assert!(r[0] > 0);
    }
    let mut lanes = [LaneStatus::default(); 2];
    let mut seen = false;
    assert!(wait_until(&[&l.client], || {
        let st = l
            .client
            .get_connection_real_time_status(l.c_conn, &mut lanes)
            .unwrap();
        seen = lanes[1].pending_reliable > 0;
        // The lane figures add up to the connection's.
        assert_eq!(
            st.pending_reliable,
            lanes[0].pending_reliable + lanes[1].pending_reliable
        );
        seen || st.pending_reliable == 0
    }));
    assert!(seen, "lane 1's backlog shows before it drains");
    assert_eq!(lanes[0].pending_reliable, 0, "lane 0 has nothing queued");
}

#[test]
fn lower_priority_value_goes_first() {
    // Lane 1 (priority 10) gets a backlog of several hundred ms at this rate; lane 0
    // (priority 0) messages queued after it still overtake it.
    let l = link(
        1,
        &[
            ConfigValue::SendRateMin(128 * 1024),
            ConfigValue::SendRateMax(128 * 1024),
            ConfigValue::SendBufferSize(1 << 20),
        ],
    );
    assert_eq!(
        l.client.configure_connection_lanes(l.c_conn, &[0, 10], &[]),
        EResult::Ok
    );
    let send = |lane: u16, n: usize, size: usize| {
        let msgs = (0..n)
            .map(|_| OutMessage {
                conn: l.c_conn,
                data: vec![lane as u8; size],
                flags: send_flags::RELIABLE,
                lane,
            })
            .collect();
        assert!(l.client.send_messages(msgs).iter().all(|&r| r > 0));
    };
    send(1, 100, 1000);
    send(0, 10, 100);
    let got = recv_n(&l.server, l.s_conn, 110);
    assert_eq!(got.len(), 110);
    let last_high = got.iter().rposition(|m| m.lane == 0).unwrap();
    let low_before = got[..last_high].iter().filter(|m| m.lane == 1).count();
    assert!(
        low_before < 50,
        "all of lane 0 arrived after {low_before} of lane 1's 100 messages"
    );
}
