//! The cleartext header of a data packet (spec §1.3): flags, the receiver's connection id, the
//! low 16 bits of the packet number, and two optional fields, an inline stats blob
//! (`CMsgSteamSockets_UDP_Stats`) and the sender's time since its previous packet. Everything
//! after the header is the AEAD ciphertext and tag.
//!
//! ```text
//! 0   flags      0x80 always | 0x01 stats blob | 0x02 time-since-prev   (other bits ignored)
//! 1   u32 LE     to_connection_id (the receiver's)
//! 5   u16 LE     packet number, low 16 bits
//! 7   [varint N, N bytes stats blob]   if 0x01
//!     [u16 LE time since previous, 16 µs units]  if 0x02
//! ```
//!
//! None of it is authenticated: GNS (`CConnectionTransportUDPBase::Received_Data`) reads the
//! stats blob before decrypting but acts on it only once the payload has decrypted, and callers
//! should do the same with [`DataHeader::decode_stats`].

use prost::Message;

use super::packet::{DATA_HEADER_LEN, DATA_LEAD_BIT, receiver_id};
use super::proto::UdpStats;
use super::varint::{read_varint, varint_len, write_varint};

/// Flags bit: an inline stats blob follows the fixed header.
pub const FLAG_STATS_BLOB: u8 = 0x01;
/// Flags bit: a u16 time-since-previous-packet follows (after the stats blob, if any).
pub const FLAG_TIME_SINCE_PREV: u8 = 0x02;

/// Why a data-packet header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// Fewer than the 7 fixed header bytes.
    #[error("data packet shorter than its 7-byte header")]
    Truncated,
    /// Lead byte lacks 0x80: not a data packet.
    #[error("lead byte {0:#04x} is not a data packet")]
    NotData(u8),
    /// The stats blob's varint length is truncated or overflows.
    #[error("bad stats blob length varint")]
    StatsLengthVarint,
    /// The stats blob's length runs past the end of the datagram.
    #[error("stats blob of {0} bytes overruns the datagram")]
    StatsBlobOverrun(u64),
    /// Flags say time-since-prev is present but fewer than 2 bytes remain.
    #[error("time-since-prev field truncated")]
    TimeSincePrevTruncated,
    /// The stats blob is not a valid `CMsgSteamSockets_UDP_Stats`.
    #[error("stats blob does not parse")]
    StatsProtobuf,
}

/// A decoded (or to-be-encoded) data-packet header. Borrows the stats blob from the datagram so
/// decoding allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataHeader<'a> {
    /// The receiver's connection id.
    pub to_connection_id: u32,
    /// Low 16 bits of the packet number; expand with [`crate::wire::pktnum`].
    pub packet_number: u16,
    /// Raw `CMsgSteamSockets_UDP_Stats` bytes, when present.
    pub stats_blob: Option<&'a [u8]>,
    /// Sender's time since its previous sequenced packet, in 16 µs units, when present.
    pub time_since_prev: Option<u16>,
}

impl<'a> DataHeader<'a> {
    /// A header with neither optional field: what Sockworks sends most of the time.
    pub const fn new(to_connection_id: u32, packet_number: u16) -> Self {
        Self {
            to_connection_id,
            packet_number,
            stats_blob: None,
            time_since_prev: None,
        }
    }

    /// Reads the header from the front of `datagram`; returns it and the offset where the
    /// ciphertext starts. Flag bits other than 0x01/0x02 are ignored, as GNS does.
    pub fn decode(datagram: &'a [u8]) -> Result<(Self, usize), HeaderError> {
        let fixed = datagram
            .get(..DATA_HEADER_LEN)
            .ok_or(HeaderError::Truncated)?;
        let flags = fixed[0];
        let to_connection_id = receiver_id(fixed).ok_or(HeaderError::NotData(flags))?;
        let packet_number = u16::from_le_bytes([fixed[5], fixed[6]]);
        let mut pos = DATA_HEADER_LEN;

        let mut stats_blob = None;
        if flags & FLAG_STATS_BLOB != 0 {
            let (len, used) =
                read_varint(&datagram[pos..]).map_err(|_| HeaderError::StatsLengthVarint)?;
            pos += used;
            let rest = &datagram[pos..];
            // Compare in u64 so a huge length cannot wrap on any target.
            if len > rest.len() as u64 {
                return Err(HeaderError::StatsBlobOverrun(len));
            }
            let len = len as usize;
            stats_blob = Some(&rest[..len]);
            pos += len;
        }

        let mut time_since_prev = None;
        if flags & FLAG_TIME_SINCE_PREV != 0 {
            let b = datagram
                .get(pos..pos + 2)
                .ok_or(HeaderError::TimeSincePrevTruncated)?;
            time_since_prev = Some(u16::from_le_bytes([b[0], b[1]]));
            pos += 2;
        }

        let header = Self {
            to_connection_id,
            packet_number,
            stats_blob,
            time_since_prev,
        };
        Ok((header, pos))
    }

    /// The flags byte this header encodes to: 0x80 plus the presence bits.
    pub fn flags(&self) -> u8 {
        let mut flags = DATA_LEAD_BIT;
        if self.stats_blob.is_some() {
            flags |= FLAG_STATS_BLOB;
        }
        if self.time_since_prev.is_some() {
            flags |= FLAG_TIME_SINCE_PREV;
        }
        flags
    }

    /// Bytes [`DataHeader::encode`] appends (the offset of the ciphertext).
    pub fn encoded_len(&self) -> usize {
        let stats = self
            .stats_blob
            .map_or(0, |b| varint_len(b.len() as u64) + b.len());
        let tsp = if self.time_since_prev.is_some() { 2 } else { 0 };
        DATA_HEADER_LEN + stats + tsp
    }

    /// Appends the header to `out` (append rather than a fixed slice because the stats blob
    /// makes the length variable; the caller then appends the ciphertext). The flags byte is
    /// [`DataHeader::flags`]: no other bits are ever sent.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.push(self.flags());
        out.extend_from_slice(&self.to_connection_id.to_le_bytes());
        out.extend_from_slice(&self.packet_number.to_le_bytes());
        if let Some(blob) = self.stats_blob {
            write_varint(out, blob.len() as u64);
            out.extend_from_slice(blob);
        }
        if let Some(tsp) = self.time_since_prev {
            out.extend_from_slice(&tsp.to_le_bytes());
        }
    }

    /// Rewrites the packet number of a header already encoded at the front of `encoded`: the
    /// sender encodes the header before SNP picks the number, and this keeps the field's
    /// offset in one place. Does nothing to a slice shorter than the fixed header.
    pub fn set_packet_number(encoded: &mut [u8], packet_number: u16) {
        if let Some(field) = encoded.get_mut(5..DATA_HEADER_LEN) {
            field.copy_from_slice(&packet_number.to_le_bytes());
        }
    }

    /// Parses the stats blob, if any. Only act on the result after the payload decrypted.
    pub fn decode_stats(&self) -> Option<Result<UdpStats, HeaderError>> {
        self.stats_blob
            .map(|blob| UdpStats::decode(blob).map_err(|_| HeaderError::StatsProtobuf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// §1.2: the GNS server's first data packet, header part.
    #[test]
    fn known_encoding_with_stats() {
        let mut d = vec![0x81, 0xd5, 0x1b, 0xeb, 0x3d, 0x02, 0x00, 0x02, 0x18, 0x02];
        d.extend_from_slice(&[0xaa; 20]);
        let (h, off) = DataHeader::decode(&d).unwrap();
        assert_eq!(off, 10);
        assert_eq!(h.flags(), 0x81);
        assert_eq!(h.to_connection_id, 1_038_818_261);
        assert_eq!(h.packet_number, 2);
        assert_eq!(h.stats_blob, Some(&[0x18, 0x02][..]));
        assert_eq!(h.time_since_prev, None);
        let stats = h.decode_stats().unwrap().unwrap();
        assert_eq!(stats.flags, Some(UdpStats::ACK_REQUEST_E2E));
        assert_eq!(stats.stats, None);
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, d[..10]);
        assert_eq!(h.encoded_len(), 10);
    }

    #[test]
    fn packet_number_patched_in_place() {
        let mut out = Vec::new();
        DataHeader::new(7, 0).encode(&mut out);
        DataHeader::set_packet_number(&mut out, 0xbeef);
        assert_eq!(
            DataHeader::decode(&out).unwrap().0,
            DataHeader::new(7, 0xbeef)
        );
        DataHeader::set_packet_number(&mut out[..3], 1);
    }

    #[test]
    fn plain_and_time_since_prev() {
        let h = DataHeader::new(0x0102_0304, 0xbeef);
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, [0x80, 4, 3, 2, 1, 0xef, 0xbe]);
        let t = DataHeader {
            time_since_prev: Some(0x1234),
            ..h
        };
        out.clear();
        t.encode(&mut out);
        assert_eq!(out, [0x82, 4, 3, 2, 1, 0xef, 0xbe, 0x34, 0x12]);
        assert_eq!(DataHeader::decode(&out), Ok((t, 9)));
        assert_eq!(h.decode_stats(), None);
    }

    #[test]
    fn other_flag_bits_ignored() {
        let d = [0xfc, 1, 0, 0, 0, 7, 0, 0xcc];
        let (h, off) = DataHeader::decode(&d).unwrap();
        assert_eq!((h, off), (DataHeader::new(1, 7), 7));
    }

    #[test]
    fn errors() {
        assert_eq!(DataHeader::decode(&[0x80; 6]), Err(HeaderError::Truncated));
        assert_eq!(
            DataHeader::decode(&[0x24, 0, 0, 0, 0, 0, 0]),
            Err(HeaderError::NotData(0x24))
        );
        assert_eq!(
            DataHeader::decode(&[0x81, 0, 0, 0, 0, 0, 0]),
            Err(HeaderError::StatsLengthVarint)
        );
        assert_eq!(
            DataHeader::decode(&[0x81, 0, 0, 0, 0, 0, 0, 0xff]),
            Err(HeaderError::StatsLengthVarint)
        );
        assert_eq!(
            DataHeader::decode(&[0x81, 0, 0, 0, 0, 0, 0, 3, 1, 2]),
            Err(HeaderError::StatsBlobOverrun(3))
        );
        let mut huge = vec![0x81, 0, 0, 0, 0, 0, 0];
        huge.extend_from_slice(&[0xff; 9]);
        huge.push(0x01);
        assert_eq!(
            DataHeader::decode(&huge),
            Err(HeaderError::StatsBlobOverrun(u64::MAX))
        );
        assert_eq!(
            DataHeader::decode(&[0x82, 0, 0, 0, 0, 0, 0, 1]),
            Err(HeaderError::TimeSincePrevTruncated)
        );
        assert_eq!(
            DataHeader::decode(&[0x83, 0, 0, 0, 0, 0, 0, 1, 0x18]),
            Err(HeaderError::TimeSincePrevTruncated)
        );
        let (h, _) = DataHeader::decode(&[0x81, 0, 0, 0, 0, 0, 0, 1, 0xff]).unwrap();
        assert_eq!(h.decode_stats(), Some(Err(HeaderError::StatsProtobuf)));
    }

    proptest! {
        #[test]
        fn round_trip(
            to in any::<u32>(),
            pn in any::<u16>(),
            blob in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
            tsp in proptest::option::of(any::<u16>()),
            payload in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let h = DataHeader {
                to_connection_id: to,
                packet_number: pn,
                stats_blob: blob.as_deref(),
                time_since_prev: tsp,
            };
            let mut out = Vec::new();
            h.encode(&mut out);
            prop_assert_eq!(out.len(), h.encoded_len());
            out.extend_from_slice(&payload);
            let (back, off) = DataHeader::decode(&out).unwrap();
            prop_assert_eq!(back, h);
            prop_assert_eq!(off, h.encoded_len());
            prop_assert_eq!(&out[off..], &payload[..]);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok((h, off)) = DataHeader::decode(&bytes) {
                prop_assert!(off <= bytes.len());
                prop_assert!(off >= DATA_HEADER_LEN);
                let _ = h.decode_stats();
            }
        }
    }
}
