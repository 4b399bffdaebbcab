//! The data path of one connection, in memory: the client frames reliable messages into SNP
//! packets (stop_waiting, ack, reliable segments), seals them as one batch; the server checks
//! each header and packet number against its replay window, opens the batch, decodes the
//! frames, reassembles the reliable stream and verifies every message byte for byte.

use anyhow::{Context, bail, ensure};
use sockworks_engine::crypto::{
    CommitOutcome, OpenItem, PacketCipher, ReplayWindow, SealItem, TAG_LEN,
};
use sockworks_engine::wire::frame::{
    FixedRefs, Frame, FrameDecoder, PacketEncoder, decode_reliable_header, reliable_header_len,
    write_reliable_header,
};
use sockworks_engine::wire::header::DataHeader;
use sockworks_engine::wire::packet::{MAX_PLAINTEXT_SEND, PacketKind, classify};

use crate::handshake::Session;

/// Counters a run adds up.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
    /// Data packets sent and opened.
    pub packets: u64,
    /// Messages sent.
    pub sent: u64,
    /// Messages delivered intact, in order.
    pub delivered: u64,
    /// UDP payload bytes.
    pub bytes: u64,
}

/// One connection's state on both sides.
pub(crate) struct Flow {
    session: Session,
    index: u32,
    next_pn: u64,
    next_msg: u64,
    send_pos: u64,
    replay: ReplayWindow,
    rx: RecvStream,
    bufs: Vec<Vec<u8>>,
}

/// The server's view of the reliable stream of lane 0.
struct RecvStream {
    conn: u32,
    /// Stream position of `bytes[0]`.
    pos: u64,
    /// Number of the last delivered message.
    msg: u64,
    bytes: Vec<u8>,
}

/// Payload byte `i` of message `num` on connection `conn`: checkable without storing it.
fn pattern(conn: u32, num: u64, i: usize) -> u8 {
    (u64::from(conn).wrapping_mul(131) ^ num.wrapping_mul(31) ^ i as u64) as u8
}

impl Flow {
    /// A flow over a connected session.
    pub(crate) fn new(session: Session, index: u32, burst: usize) -> Self {
        Flow {
            session,
            index,
            next_pn: 2, // packet 1 is implied by the handshake
            next_msg: 1,
            send_pos: 1, // the reliable stream starts at 1
            replay: ReplayWindow::new(),
            rx: RecvStream {
                conn: index,
                pos: 1,
                msg: 0,
                bytes: Vec::new(),
            },
            bufs: (0..burst).map(|_| Vec::with_capacity(1400)).collect(),
        }
    }

    /// Sends `bufs.len()` packets of `msg_size`-byte reliable messages and receives them.
    pub(crate) fn round(&mut self, msg_size: usize, tally: &mut Tally) -> anyhow::Result<()> {
        self.build(msg_size, tally)?;
        self.receive(tally)
    }

    fn build(&mut self, msg_size: usize, tally: &mut Tally) -> anyhow::Result<()> {
        let server_id = self.session.server.local_id;
        let mut msg = vec![0u8; msg_size];
        for buf in &mut self.bufs {
            buf.clear();
            DataHeader::new(server_id, self.next_pn as u16).encode(buf);
            let header_len = buf.len();
            let start = buf.len();
            let mut enc = PacketEncoder::new(buf);
            let sw = enc.stop_waiting(self.next_pn, 1)?;
            // Ack of packet 1 (the handshake), no timing, as GNS's first packets carry.
            enc.ack(1, 0xffff, &[])?;
            // One encoder per packet: later segments are encoded relative to earlier ones.
            // Segment overhead is at most 9 bytes (type, 48-bit position, size byte).
            let mut used = start + sw.encoded_len() + 5;
            let hdr = reliable_header_len(1, msg_size as u64);
            let mut seg = Vec::with_capacity(hdr + msg_size);
            while used + 9 + hdr + msg_size <= header_len + MAX_PLAINTEXT_SEND {
                seg.clear();
                write_reliable_header(&mut seg, 1, msg_size as u64);
                for (i, b) in msg.iter_mut().enumerate() {
                    *b = pattern(self.index, self.next_msg, i);
                }
                seg.extend_from_slice(&msg);
                enc.reliable(0, self.send_pos, &seg, false)?;
                used += 9 + seg.len();
                self.send_pos += seg.len() as u64;
                self.next_msg += 1;
                tally.sent += 1;
            }
            ensure!(
                buf.len() > header_len + 7,
                "message of {msg_size} bytes does not fit a packet"
            );
            buf.reserve(TAG_LEN);
            self.next_pn += 1;
        }
        let first = self.next_pn - self.bufs.len() as u64;
        let items = self.bufs.iter_mut().enumerate().map(|(i, buf)| SealItem {
            packet_number: first + i as u64,
            buf,
            header_len: 7,
        });
        self.session.client.send.seal_iter(items)?;
        Ok(())
    }

    fn receive(&mut self, tally: &mut Tally) -> anyhow::Result<()> {
        let mut items = Vec::with_capacity(self.bufs.len());
        for buf in self.bufs.iter_mut() {
            tally.bytes += buf.len() as u64;
            ensure!(classify(buf)? == PacketKind::Data, "not a data packet");
            let (hdr, ct) = DataHeader::decode(buf)?;
            ensure!(
                hdr.to_connection_id == self.session.server.local_id,
                "wrong connection id"
            );
            let pn = self
                .replay
                .expand(hdr.packet_number)
                .context("packet number")?;
            ensure!(
                self.replay.check(pn).is_acceptable(),
                "replayed packet {pn}"
            );
            items.push(OpenItem::new(pn, &mut buf[ct..]));
        }
        let opened = self.session.server.recv.open_batch(&mut items);
        ensure!(
            opened == items.len(),
            "{} packets failed to open",
            items.len() - opened
        );
        let refs = FixedRefs {
            next_packet_number: 2,
            message_number: 0,
            stream_pos: self.rx.pos,
        };
        for item in &items {
            let pt = item.plaintext().context("opened packet")?;
            match self.replay.commit(item.packet_number) {
                CommitOutcome::Recorded => {}
                other => bail!("packet {} not recorded: {other:?}", item.packet_number),
            }
            tally.packets += 1;
            for frame in FrameDecoder::new(pt, item.packet_number, &refs) {
                if let Frame::Reliable(seg) = frame? {
                    let expected = self.rx.pos + self.rx.bytes.len() as u64;
                    ensure!(seg.stream_pos == expected, "stream gap");
                    self.rx.bytes.extend_from_slice(seg.data);
                }
            }
            self.rx.deliver(tally)?;
        }
        Ok(())
    }
}

impl RecvStream {
    /// Parses complete messages from the front of the reassembled stream and checks them.
    fn deliver(&mut self, tally: &mut Tally) -> anyhow::Result<()> {
        let mut at = 0;
        while let Some(h) = decode_reliable_header(&self.bytes[at..])? {
            let end = at + h.header_len + h.size as usize;
            if end > self.bytes.len() {
                break;
            }
            self.msg += h.msg_num_delta;
            let body = &self.bytes[at + h.header_len..end];
            let intact = body
                .iter()
                .enumerate()
                .all(|(i, b)| *b == pattern(self.conn, self.msg, i));
            ensure!(intact, "message {} corrupted", self.msg);
            tally.delivered += 1;
            at = end;
        }
        self.bytes.drain(..at);
        self.pos += at as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;
    use sockworks_engine::crypto::AeadBackend;

    fn run(backend: AeadBackend, msg_size: usize) -> Tally {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut tally = Tally::default();
        let certs = crate::handshake::Certs::Anonymous;
        let sides = crate::handshake::Sides::new(certs, &mut rng).unwrap();
        for i in 0..3 {
            let (session, _) = crate::handshake::connect(&mut rng, backend, &sides).unwrap();
            let mut flow = Flow::new(session, i, 8);
            for _ in 0..4 {
                flow.round(msg_size, &mut tally).unwrap();
            }
        }
        tally
    }

    #[test]
    fn every_message_arrives_intact_one_per_packet() {
        let t = run(AeadBackend::Ring, 1024);
        assert_eq!(t.packets, 3 * 4 * 8);
        assert_eq!(t.sent, t.packets);
        assert_eq!(t.delivered, t.sent);
    }

    #[test]
    fn small_messages_pack_many_per_packet_with_either_backend() {
        for backend in [AeadBackend::Ring, AeadBackend::RustCrypto] {
            let t = run(backend, 32);
            assert!(t.sent > 20 * t.packets, "{t:?}");
            assert_eq!(t.delivered, t.sent);
        }
    }
}
