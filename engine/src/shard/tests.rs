//! Shards over the in-memory loopback driver: echo through a runtime, and forwarding of data
//! packets that land on the wrong shard.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::driver::loopback::LoopbackNet;
use crate::proto::endpoint::ConnectionId;
use crate::proto::snp::send_flags;

/// Connects, sends `n` reliable messages, counts echoes; optionally moves its peer address
/// (to another shard's socket) once connected, to exercise forwarding.
struct ClientApp {
    server: SocketAddr,
    move_to: Option<SocketAddr>,
    conn: Option<ConnectionId>,
    sent: usize,
    n: usize,
    echoed: Arc<AtomicUsize>,
}

impl App for ClientApp {
    fn on_tick(&mut self, ep: &mut Endpoint, now: Timestamp) {
        let c = *self
            .conn
            .get_or_insert_with(|| ep.connect(now, self.server.into(), None).expect("connect"));
        while ep.poll_event().is_some() {}
        if ep
            .connection(c)
            .is_some_and(|x| x.state() == crate::proto::connection::State::Connected)
        {
            if let Some(to) = self.move_to.take()
                && let Some(conn) = ep.connection_mut(c)
            {
                conn.set_peer(to);
            }
            while self.sent < self.n {
                if ep
                    .send_message(now, c, 0, send_flags::RELIABLE, vec![self.sent as u8; 100])
                    .is_err()
                {
                    break;
                }
                self.sent += 1;
            }
        }
        while ep.poll_message(c).is_some() {
            self.echoed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn wait_for(counter: &AtomicUsize, want: usize) -> bool {
    for _ in 0..1000 {
        if counter.load(Ordering::Relaxed) >= want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn rt_config(shards: usize, listen: bool) -> RuntimeConfig {
    let mut endpoint = crate::proto::endpoint::EndpointConfig {
        listen,
        ..Default::default()
    };
    endpoint.connection.snp.send_rate_min = 10_000_000;
    endpoint.connection.snp.send_rate_max = 10_000_000;
    RuntimeConfig {
        shards,
        pin: false,
        busy_poll: false,
        batch: 32,
        endpoint,
        seed: 5,
        secret: None,
    }
}

#[test]
fn runtime_echoes_over_the_loopback_driver() {
    let net = LoopbackNet::new();
    let server_addr: SocketAddr = "10.0.0.1:27015".parse().unwrap();
    let server =
        Runtime::start(rt_config(1, true), |_| net.bind(server_addr), |_| EchoApp).unwrap();
    let echoed = Arc::new(AtomicUsize::new(0));
    let e2 = echoed.clone();
    let client = Runtime::start(
        rt_config(1, false),
        |_| net.bind("10.0.0.2:5000".parse().unwrap()),
        move |_| ClientApp {
            server: server_addr,
            move_to: None,
            conn: None,
            sent: 0,
            n: 500,
            echoed: e2.clone(),
        },
    )
    .unwrap();
    assert!(
        wait_for(&echoed, 500),
        "echoed {}",
        echoed.load(Ordering::Relaxed)
    );
    let cs = client.stop().unwrap();
    let ss = server.stop().unwrap();
    assert!(ss[0].datagrams_in > 0 && cs[0].datagrams_out > 0);
    assert!(
        ss[0].recv_batches < ss[0].datagrams_in,
        "datagrams arrive in batches"
    );
}

#[test]
fn packets_on_the_wrong_shard_are_forwarded_to_the_owner() {
    let net = LoopbackNet::new();
    let addrs: Vec<SocketAddr> = vec!["10.0.0.1:1".parse().unwrap(), "10.0.0.1:2".parse().unwrap()];
    let a2 = addrs.clone();
    let server = Runtime::start(rt_config(2, true), |i| net.bind(a2[i]), |_| EchoApp).unwrap();
    let echoed = Arc::new(AtomicUsize::new(0));
    let e2 = echoed.clone();
    let (first, second) = (addrs[0], addrs[1]);
    let client = Runtime::start(
        rt_config(1, false),
        |_| net.bind("10.0.0.2:5000".parse().unwrap()),
        move |_| ClientApp {
            server: first,
            move_to: Some(second),
            conn: None,
            sent: 0,
            n: 200,
            echoed: e2.clone(),
        },
    )
    .unwrap();
    assert!(
        wait_for(&echoed, 200),
        "echoed {}",
        echoed.load(Ordering::Relaxed)
    );
    client.stop().unwrap();
    let stats = server.stop().unwrap();
    assert!(stats[1].forwarded_out > 0, "shard 1 forwarded: {stats:?}");
    assert_eq!(stats[0].forwarded_in, stats[1].forwarded_out);
}

#[test]
fn mailbox_commands_run_on_the_shard() {
    let net = LoopbackNet::new();
    let rt = Runtime::start(
        rt_config(1, false),
        |_| net.bind("10.0.0.9:1".parse().unwrap()),
        |_| NoApp,
    )
    .unwrap();
    let seen = Arc::new(Mutex::new(None));
    let s2 = seen.clone();
    rt.mailbox(0).unwrap().send(Box::new(move |ep, now| {
        let id = ep
            .connect(
                now,
                "10.0.0.8:1".parse::<SocketAddr>().unwrap().into(),
                None,
            )
            .unwrap();
        *s2.lock().unwrap() = Some(id);
    }));
    for _ in 0..500 {
        if seen.lock().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let id = seen.lock().unwrap().expect("command ran");
    assert_eq!(rt.shard_of(id.get()), 0);
    rt.stop().unwrap();
}
