//! Shards over the in-memory loopback driver: echo through a runtime, and forwarding of data
//! packets that land on the wrong shard.

use std::net::SocketAddr;
use std::sync::Arc;
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
    echoed: Arc<Count>,
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
        let mut got = 0;
        while ep.poll_message(c).is_some() {
            got += 1;
        }
        if got > 0 {
            self.echoed.add(got);
        }
    }
}

/// A count the client's shard raises and the test thread waits on (no polling).
#[derive(Default)]
struct Count {
    n: std::sync::Mutex<usize>,
    raised: std::sync::Condvar,
}

impl Count {
    fn add(&self, k: usize) {
        *self.n.lock().unwrap() += k;
        self.raised.notify_all();
    }

    fn get(&self) -> usize {
        *self.n.lock().unwrap()
    }

    /// Waits until the count reaches `want` (true) or 10 s pass (false).
    fn wait_for(&self, want: usize) -> bool {
        let n = self.n.lock().unwrap();
        let (n, _) = self
            .raised
            .wait_timeout_while(n, Duration::from_secs(10), |n| *n < want)
            .unwrap();
        *n >= want
    }
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
        coalesce: COALESCE_DEFAULT,
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
    let echoed = Arc::new(Count::default());
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
    assert!(echoed.wait_for(500), "echoed {}", echoed.get());
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
    let echoed = Arc::new(Count::default());
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
    assert!(echoed.wait_for(200), "echoed {}", echoed.get());
    client.stop().unwrap();
    let stats = server.stop().unwrap();
    assert!(stats[1].forwarded_out > 0, "shard 1 forwarded: {stats:?}");
    assert_eq!(stats[0].forwarded_in, stats[1].forwarded_out);
}

#[test]
fn commands_run_on_the_shard_in_the_order_they_were_queued() {
    let net = LoopbackNet::new();
    let mut bound = Runtime::bind(rt_config(1, false), |_| {
        net.bind("10.0.0.9:1".parse().unwrap())
    })
    .unwrap();
    let stocks = bound.id_stocks();
    let rt = bound.spawn(|_| NoApp).unwrap();
    let id = stocks[0]
        .take()
        .expect("the stock is filled before the shard starts");
    assert_eq!(rt.shard_of(id.get()), 0);
    let mb = rt.mailbox(0).unwrap();
    let ask = || {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        mb.send(Command::Query {
            id,
            query: Query::Detailed(tx),
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the shard answers")
    };
    assert_eq!(ask(), None, "no connection on that id yet");
    mb.send(Command::Connect {
        local: 0,
        id,
        server: "10.0.0.8:1".parse().unwrap(),
        config: Box::default(),
        expected: None,
    });
    // Queued after the connect, so it runs after it: no polling needed.
    let text = ask().expect("the connect ran first");
    assert!(text.contains("10.0.0.8:1"), "{text}");
    rt.stop().unwrap();
}

#[test]
fn a_steady_stream_of_commands_cannot_keep_the_socket_unread() {
    // A turn that finds commands waiting right after one that drained the socket skips its
    // receive call; it must never do so twice in a row, or an application thread sending
    // without pause would starve every datagram.
    let net = LoopbackNet::new();
    let driver = net.bind("10.0.0.7:1".parse().unwrap()).unwrap();
    let addr = driver.local_addr().unwrap();
    let endpoint = Endpoint::new(
        crate::proto::endpoint::EndpointConfig::default(),
        7,
        &crate::entropy::SecretSeed::from_os().expect("OS randomness"),
    );
    let (mut shard, mb) = Shard::new(driver, endpoint, ShardConfig::default(), Clock::new());
    let mut app = NoApp;
    let mut answers = Vec::new();
    let mut command = || {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        answers.push(answer);
        mb.send(Command::Query {
            id: ConnectionId::new(1),
            query: Query::Detailed(reply),
        });
    };
    shard.turn(&mut app).unwrap(); // drains the (empty) socket
    command();
    shard.idle().unwrap(); // commands wait: the next turn skips its receive call
    let mut peer = net.bind("10.0.0.7:2".parse().unwrap()).unwrap();
    let mut tx = TxBatch::with_capacity(1);
    tx.push(
        addr.into(),
        b"not a GNS packet, but a datagram all the same",
    );
    assert_eq!(peer.send_batch(&tx).unwrap(), 1);
    for _ in 0..8 {
        let work = shard.turn(&mut app).unwrap();
        // A command is always waiting when the shard looks for sleep (so it never sleeps).
        command();
        if !work || shard.settled() {
            shard.idle().unwrap();
        }
    }
    assert_eq!(shard.stats().datagrams_in, 1, "{:?}", shard.stats());
}

#[test]
fn only_a_turn_that_found_several_datagrams_pauses_before_the_next() {
    let net = LoopbackNet::new();
    let mut peer = net.bind("10.0.0.8:2".parse().unwrap()).unwrap();
    let shard_with = |coalesce| {
        let driver = net.bind("10.0.0.8:1".parse().unwrap()).unwrap();
        let endpoint = Endpoint::new(
            crate::proto::endpoint::EndpointConfig::default(),
            8,
            &crate::entropy::SecretSeed::from_os().expect("OS randomness"),
        );
        let config = ShardConfig {
            coalesce,
            ..ShardConfig::default()
        };
        Shard::new(driver, endpoint, config, Clock::new()).0
    };
    let mut send = |to: SocketAddr, n: usize| {
        let mut tx = TxBatch::with_capacity(n);
        for _ in 0..n {
            tx.push(to.into(), b"a datagram, not a GNS packet");
        }
        assert_eq!(peer.send_batch(&tx).unwrap(), n);
    };
    let mut app = NoApp;

    let mut shard = shard_with(COALESCE_DEFAULT);
    let addr = shard.local_addr().unwrap();
    send(addr, 1);
    shard.turn(&mut app).unwrap();
    assert!(
        !shard.coalescing(shard.clock.now()),
        "one datagram is answered at once"
    );

    send(addr, COALESCE_MIN_DATAGRAMS);
    shard.turn(&mut app).unwrap();
    assert!(
        shard.coalescing(shard.clock.now()),
        "a loaded turn pauses before the next"
    );
    assert!(
        !shard.coalescing(shard.turn_began + COALESCE_DEFAULT),
        "a turn that took as long as the pause has its fixed costs spread already"
    );
    shard.idle().unwrap();
    assert_eq!(shard.stats().coalesced, 1);
    assert!(
        !shard.coalescing(shard.clock.now()),
        "never two pauses without a turn between"
    );
    drop(shard);

    let mut shard = shard_with(Duration::ZERO);
    let addr = shard.local_addr().unwrap();
    send(addr, 2 * COALESCE_MIN_DATAGRAMS);
    shard.turn(&mut app).unwrap();
    assert!(
        !shard.coalescing(shard.clock.now()),
        "zero turns pausing off"
    );
}

/// An application thread that answers at once: during its first tick it queues one command.
struct AnswersAtOnce {
    mailbox: Mailbox,
    answers: Vec<std::sync::mpsc::Receiver<Option<String>>>,
    ticks: usize,
}

impl App for AnswersAtOnce {
    fn on_tick(&mut self, _: &mut Endpoint, _: Timestamp) {
        self.ticks += 1;
        if self.ticks > 1 {
            return;
        }
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.answers.push(answer);
        self.mailbox.send(Command::Query {
            id: ConnectionId::new(1),
            query: Query::Detailed(reply),
        });
    }
}

#[test]
fn commands_queued_during_a_turn_run_before_its_flush() {
    let net = LoopbackNet::new();
    let driver = net.bind("10.0.0.9:1".parse().unwrap()).unwrap();
    let endpoint = Endpoint::new(
        crate::proto::endpoint::EndpointConfig::default(),
        9,
        &crate::entropy::SecretSeed::from_os().expect("OS randomness"),
    );
    let (mut shard, mailbox) = Shard::new(driver, endpoint, ShardConfig::default(), Clock::new());
    let mut app = AnswersAtOnce {
        mailbox,
        answers: Vec::new(),
        ticks: 0,
    };
    shard.turn(&mut app).unwrap();
    assert_eq!(
        shard.stats().commands,
        1,
        "run in the turn that saw it queued"
    );
    assert!(
        app.answers[0].try_recv().is_ok(),
        "answered before the turn ended"
    );
    // What a late command caused (a status change, say) reaches the app in the same turn, as
    // the loop may sleep after it (API tests timed out waiting for a connection's state).
    assert_eq!(app.ticks, 2, "the app sees the late command's effects");
    shard.turn(&mut app).unwrap();
    assert_eq!(app.ticks, 3, "one tick for a turn without late commands");
}
