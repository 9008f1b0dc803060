//! Packet framing: `3-byte little-endian length | 1-byte sequence id | payload`.
//!
//! A payload of `MAX_CHUNK` (16 MiB − 1) bytes or more is sent as several packets; every packet of
//! exactly `MAX_CHUNK` bytes is followed by another one, possibly empty. Decoding follows the
//! pattern *check the frame is complete, then parse, then advance*: nothing is consumed from the
//! buffer until a whole logical packet is there.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::ProtocolError;

/// The largest payload one physical packet can carry.
pub const MAX_CHUNK: usize = 0x00FF_FFFF;
/// Size of a packet header.
pub const HEADER_LEN: usize = 4;

/// The header of the physical packet at the start of `buf`, if four bytes are there.
#[inline]
pub fn peek_header(buf: &[u8]) -> Option<(usize, u8)> {
    if buf.len() < HEADER_LEN {
        return None;
    }
    let len = buf[0] as usize | (buf[1] as usize) << 8 | (buf[2] as usize) << 16;
    Some((len, buf[3]))
}

/// Writes one physical packet header.
#[inline]
pub fn put_header(out: &mut BytesMut, len: usize, seq: u8) {
    debug_assert!(len <= MAX_CHUNK);
    out.put_u8(len as u8);
    out.put_u8((len >> 8) as u8);
    out.put_u8((len >> 16) as u8);
    out.put_u8(seq);
}

/// Appends `payload` as one logical packet, split into physical packets as needed.
/// `seq` is the sequence id of the first physical packet and is advanced past the last one.
pub fn encode_packet(out: &mut BytesMut, seq: &mut u8, payload: &[u8]) {
    out.reserve(payload.len() + HEADER_LEN * (1 + payload.len() / MAX_CHUNK));
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_CHUNK);
        put_header(out, n, *seq);
        out.put_slice(&rest[..n]);
        *seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_CHUNK {
            return;
        }
    }
}

/// Where a complete logical packet lies at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogicalPacket {
    /// Sequence id of the first physical packet.
    pub first_seq: u8,
    /// Sequence id of the last physical packet.
    pub last_seq: u8,
    /// Bytes of the buffer (headers included) that make up the packet.
    pub wire_len: usize,
    /// Length of the joined payload.
    pub payload_len: usize,
    /// Number of physical packets.
    pub chunks: usize,
}

/// Checks whether `buf` starts with a complete logical packet, without consuming anything.
///
/// Returns `Ok(None)` when more bytes are needed, and an error when the joined payload would
/// exceed `max_payload` (checked as soon as the headers say so, before the bytes arrive).
pub fn check_logical(
    buf: &[u8],
    max_payload: usize,
) -> Result<Option<LogicalPacket>, ProtocolError> {
    check_logical_with(buf, max_payload, true)
}

/// [`check_logical`], optionally without checking the sequence ids of continuation packets:
/// inside compressed frames the server ignores them (the frames carry the sequence), and
/// Connector/C numbers every chunk of a large packet 0 there.
pub fn check_logical_with(
    buf: &[u8],
    max_payload: usize,
    check_sequence: bool,
) -> Result<Option<LogicalPacket>, ProtocolError> {
    let mut offset = 0;
    let mut payload_len = 0usize;
    let mut chunks = 0;
    let mut first_seq = 0;
    loop {
        let Some((len, seq)) = peek_header(&buf[offset..]) else {
            return Ok(None);
        };
        if chunks == 0 {
            first_seq = seq;
        } else if check_sequence && seq != first_seq.wrapping_add(chunks as u8) {
            return Err(ProtocolError::Sequence {
                expected: first_seq.wrapping_add(chunks as u8),
                got: seq,
            });
        }
        payload_len += len;
        if payload_len > max_payload {
            return Err(ProtocolError::TooLarge {
                size: payload_len,
                max: max_payload,
            });
        }
        chunks += 1;
        offset += HEADER_LEN + len;
        if buf.len() < offset {
            return Ok(None);
        }
        if len < MAX_CHUNK {
            return Ok(Some(LogicalPacket {
                first_seq,
                last_seq: seq,
                wire_len: offset,
                payload_len,
                chunks,
            }));
        }
    }
}

/// Removes the logical packet described by `info` from `buf` and returns its joined payload.
/// A single-chunk packet is split off without copying.
pub fn take_logical(buf: &mut BytesMut, info: &LogicalPacket) -> Bytes {
    if info.chunks == 1 {
        buf.advance(HEADER_LEN);
        return buf.split_to(info.payload_len).freeze();
    }
    let mut joined = BytesMut::with_capacity(info.payload_len);
    let mut remaining = info.wire_len;
    while remaining > 0 {
        let (len, _) = peek_header(buf).unwrap_or((0, 0));
        buf.advance(HEADER_LEN);
        joined.put_slice(&buf[..len]);
        buf.advance(len);
        remaining -= HEADER_LEN + len;
    }
    joined.freeze()
}

/// Checks whether one *physical* packet is complete at the start of `buf`; used when relaying
/// packets unchanged, where large payloads need not be joined.
#[inline]
pub fn check_physical(buf: &[u8]) -> Option<(usize, u8)> {
    let (len, seq) = peek_header(buf)?;
    if buf.len() >= HEADER_LEN + len {
        Some((len, seq))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(len: usize) {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut out = BytesMut::new();
        let mut seq = 7u8;
        encode_packet(&mut out, &mut seq, &payload);
        let expected_chunks = len / MAX_CHUNK + 1;
        assert_eq!(seq, 7u8.wrapping_add(expected_chunks as u8));
        assert_eq!(out.len(), len + HEADER_LEN * expected_chunks);
        let info = check_logical(&out, usize::MAX).unwrap().unwrap();
        assert_eq!(info.chunks, expected_chunks);
        assert_eq!(info.first_seq, 7);
        assert_eq!(info.payload_len, len);
        let got = take_logical(&mut out, &info);
        assert!(out.is_empty());
        assert_eq!(&got[..], &payload[..]);
    }

    #[test]
    fn small_packets_roundtrip() {
        roundtrip(0);
        roundtrip(1);
        roundtrip(1000);
    }

    #[test]
    fn large_packets_split_and_join() {
        roundtrip(MAX_CHUNK - 1);
        roundtrip(MAX_CHUNK); // followed by an empty packet
        roundtrip(MAX_CHUNK + 1);
        roundtrip(2 * MAX_CHUNK + 5);
    }

    #[test]
    fn incomplete_needs_more() {
        let mut out = BytesMut::new();
        let mut seq = 0;
        encode_packet(&mut out, &mut seq, b"hello");
        for cut in 0..out.len() {
            assert_eq!(check_logical(&out[..cut], 100).unwrap(), None);
        }
        assert!(check_logical(&out, 100).unwrap().is_some());
    }

    #[test]
    fn too_large_is_refused_from_headers_alone() {
        let mut out = BytesMut::new();
        put_header(&mut out, 5000, 0);
        assert_eq!(
            check_logical(&out, 4096),
            Err(ProtocolError::TooLarge {
                size: 5000,
                max: 4096
            })
        );
    }

    #[test]
    fn wrong_sequence_inside_a_large_packet() {
        let mut out = BytesMut::new();
        put_header(&mut out, MAX_CHUNK, 0);
        out.resize(HEADER_LEN + MAX_CHUNK, 0);
        put_header(&mut out, 1, 5);
        out.put_u8(1);
        assert!(matches!(
            check_logical(&out, usize::MAX),
            Err(ProtocolError::Sequence {
                expected: 1,
                got: 5
            })
        ));
    }
}
