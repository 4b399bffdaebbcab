//! `--clients sockworks`: the shared load loop over Sockworks client connections in this
//! process (one instance, one poll group; each connection's user data is its client index).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};

use loadgen::load::client::{Incoming, LoadError, Outgoing, Transport};
use sockworks::{
    ConfigValue, Connection, ConnectionState, Message, OutMessage, PollGroup, Sockets,
    SocketsConfig, StatusChanged, send_flags,
};

/// Sockworks' client side as the load loop sees it.
pub(super) struct SwClients {
    sockets: Sockets,
    group: PollGroup,
    events: mpsc::Receiver<StatusChanged>,
    conns: Vec<Connection>,
    index: HashMap<Connection, usize>,
    inbox: Vec<Message>,
    flags: i32,
}

impl SwClients {
    /// An instance with `shards` shard threads and the given send rates (unset: default).
    pub(super) fn new(
        shards: usize,
        reliable: bool,
        (rate_min, rate_max): (Option<i32>, Option<i32>),
    ) -> anyhow::Result<Self> {
        let sockets = Sockets::with_config(SocketsConfig {
            shards: shards.max(1),
            ..SocketsConfig::default()
        })?;
        let (tx, events) = mpsc::channel();
        let values = [
            rate_min.map(ConfigValue::SendRateMin),
            rate_max.map(ConfigValue::SendRateMax),
            Some(ConfigValue::ConnectionStatusChanged(Arc::new(
                move |ev: &StatusChanged| {
                    let _ = tx.send(ev.clone()); // the load is over: nobody to tell
                },
            ))),
        ];
        for value in values.into_iter().flatten() {
            anyhow::ensure!(
                sockets.set_global_config_value(&value),
                "config value rejected: {value:?}"
            );
        }
        let group = sockets.create_poll_group();
        let reliability = if reliable {
            send_flags::RELIABLE
        } else {
            send_flags::UNRELIABLE
        };
        Ok(SwClients {
            sockets,
            group,
            events,
            conns: Vec::new(),
            index: HashMap::new(),
            inbox: Vec::with_capacity(1024),
            flags: reliability | send_flags::NO_NAGLE,
        })
    }
}

impl Transport for SwClients {
    fn connect(&mut self, target: SocketAddr, n: usize) -> Result<(), LoadError> {
        for i in 0..n {
            let conn = self.sockets.connect_by_ip_address(target, &[]);
            if conn == Connection::INVALID {
                return Err(LoadError::Transport(format!("connection {i} to {target}")));
            }
            // Echoes carry the user data: the client index, found without a lookup.
            let user_data = i64::try_from(i).unwrap_or(i64::MAX);
            if !(self.sockets.set_connection_user_data(conn, user_data)
                && self.sockets.set_connection_poll_group(conn, self.group))
            {
                return Err(LoadError::Transport(format!("setting up connection {i}")));
            }
            self.conns.push(conn);
            self.index.insert(conn, i);
        }
        Ok(())
    }

    fn poll(&mut self, sink: &mut dyn FnMut(Incoming<'_>)) -> usize {
        self.sockets.run_callbacks();
        let mut n = 0;
        while let Ok(ev) = self.events.try_recv() {
            n += 1;
            let Some(&i) = self.index.get(&ev.conn) else {
                continue;
            };
            match ev.info.state {
                ConnectionState::Connected => sink(Incoming::Connected(i)),
                ConnectionState::ClosedByPeer | ConnectionState::ProblemDetectedLocally => {
                    sink(Incoming::Ended {
                        conn: i,
                        reason: format!("{} {}", ev.info.end_reason, ev.info.end_debug),
                    });
                }
                _ => {}
            }
        }
        self.inbox.clear();
        self.sockets
            .receive_messages_on_poll_group(self.group, &mut self.inbox, 1024);
        for m in &self.inbox {
            sink(Incoming::Message {
                conn: usize::try_from(m.user_data).unwrap_or(usize::MAX),
                data: &m.data,
            });
        }
        n + self.inbox.len()
    }

    fn send(&mut self, batch: &mut Vec<Outgoing>, failed: &mut dyn FnMut(usize, u64)) {
        let ids: Vec<(usize, u64)> = batch.iter().map(|o| (o.conn, o.seq)).collect();
        let out = batch
            .drain(..)
            .map(|o| OutMessage {
                conn: self
                    .conns
                    .get(o.conn)
                    .copied()
                    .unwrap_or(Connection::INVALID),
                data: o.data,
                flags: self.flags,
                lane: 0,
            })
            .collect();
        for (r, &(conn, seq)) in self.sockets.send_messages(out).iter().zip(&ids) {
            if *r <= 0 {
                failed(conn, seq);
            }
        }
    }

    fn close(&mut self) {
        for &conn in &self.conns {
            self.sockets.close_connection(conn, 0, "load done", false);
        }
    }
}
