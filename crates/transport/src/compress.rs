//! The compressed protocol (`CLIENT_COMPRESS`): ordinary packets travel inside compressed
//! frames `3-byte compressed length | 1-byte sequence id | 3-byte uncompressed length |
//! zlib data` (uncompressed length 0: the data is stored as is). Frames have their own sequence
//! ids; a reply's frames continue from the last frame the peer sent.
//!
//! rwproxy speaks it as the server does (it is the server side of a client connection): the
//! sequence ids of the plain packets inside the frames are not checked on reading, and on
//! writing they are numbered like the frames, continuing from the last frame read (a 20 MiB
//! statement sent in four frames is answered with frame 4 holding packet 4).

use std::io::{Read, Write};

use bytes::{Buf, BufMut, BytesMut};
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use rwproxy_protocol::frame::MAX_CHUNK;
use rwproxy_protocol::ProtocolError;

const FRAME_HEADER: usize = 7;
/// Payloads shorter than this are sent uncompressed (not worth the CPU).
const MIN_COMPRESS: usize = 64;

#[derive(Debug, Default)]
pub struct Compressor {
    /// Compressed bytes read and not yet decoded.
    pub(crate) incoming: BytesMut,
    seq: u8,
    /// The sequence id the next plain packet written gets.
    plain_seq: u8,
    /// Payload bytes of the current outgoing plain packet still to come.
    out_left: usize,
    /// The outgoing plain packet header being read (it may straddle two writes).
    header: [u8; 4],
    header_have: usize,
    /// Plain bytes written but not framed yet (the start of an incomplete packet).
    pending: Vec<u8>,
}

impl Compressor {
    /// Appends compressed bytes as read from the peer (decoded by [`Compressor::decode`]).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.incoming.extend_from_slice(bytes);
    }

    /// Decodes every complete frame in `incoming` into `plain`; returns the bytes produced.
    pub fn decode(&mut self, plain: &mut BytesMut, max: usize) -> Result<usize, ProtocolError> {
        let mut produced = 0;
        loop {
            if self.incoming.len() < FRAME_HEADER {
                return Ok(produced);
            }
            let h = &self.incoming[..FRAME_HEADER];
            let clen = h[0] as usize | (h[1] as usize) << 8 | (h[2] as usize) << 16;
            let seq = h[3];
            let ulen = h[4] as usize | (h[5] as usize) << 8 | (h[6] as usize) << 16;
            if self.incoming.len() < FRAME_HEADER + clen {
                return Ok(produced);
            }
            if ulen > max.max(MAX_CHUNK)
                || plain.len() + ulen.max(clen) > max.saturating_add(2 * MAX_CHUNK)
            {
                return Err(ProtocolError::TooLarge { size: ulen, max });
            }
            self.incoming.advance(FRAME_HEADER);
            let data = self.incoming.split_to(clen);
            if ulen == 0 {
                plain.extend_from_slice(&data);
                produced += clen;
            } else {
                let before = plain.len();
                let mut writer = plain.writer();
                let copied = std::io::copy(
                    &mut ZlibDecoder::new(&data[..]).take(ulen as u64 + 1),
                    &mut writer,
                )
                .map_err(|_| ProtocolError::Malformed("compressed frame"))?;
                let plain_back = writer.into_inner();
                if copied as usize != ulen {
                    plain_back.truncate(before);
                    return Err(ProtocolError::Malformed("compressed frame length"));
                }
                produced += ulen;
            }
            self.seq = seq.wrapping_add(1);
            self.plain_seq = self.seq;
        }
    }

    /// Gives the plain packets in `buf` (a continuation of what was renumbered before) the
    /// sequence ids the server would: consecutive, from the last frame read. Returns the offset
    /// just after the last packet that ends in `buf` (0 when none does).
    fn renumber(&mut self, buf: &mut [u8]) -> usize {
        let mut i = 0;
        let mut boundary = 0;
        while i < buf.len() {
            if self.out_left > 0 {
                let n = self.out_left.min(buf.len() - i);
                self.out_left -= n;
                i += n;
                if self.out_left == 0 {
                    boundary = i;
                }
                continue;
            }
            let n = (4 - self.header_have).min(buf.len() - i);
            self.header[self.header_have..self.header_have + n].copy_from_slice(&buf[i..i + n]);
            self.header_have += n;
            i += n;
            if self.header_have == 4 {
                // The sequence id is the header's last byte: always in this buffer.
                buf[i - 1] = self.plain_seq;
                self.plain_seq = self.plain_seq.wrapping_add(1);
                self.out_left = self.header[0] as usize
                    | (self.header[1] as usize) << 8
                    | (self.header[2] as usize) << 16;
                self.header_have = 0;
                if self.out_left == 0 {
                    boundary = i;
                }
            }
        }
        boundary
    }

    /// Encodes `plain` (whole or partial packets with their headers, continuing what came
    /// before) as frames appended to `out`, renumbering the packets inside. Like the server, a
    /// frame holds whole packets: the bytes of a packet not complete yet wait (at most one
    /// frame's worth, 16 MiB) for the rest or for [`Compressor::finish`]. Clients such as
    /// Connector/Python read a packet from at most two frames.
    pub fn encode(&mut self, plain: &[u8], out: &mut BytesMut) {
        let start = self.pending.len();
        self.pending.extend_from_slice(plain);
        let mut pending = std::mem::take(&mut self.pending);
        let boundary = self.renumber(&mut pending[start..]);
        // Everything up to the last packet that ended; the rest is one incomplete packet.
        let mut ready = if boundary > 0 { start + boundary } else { 0 };
        // A packet longer than a frame is sent in full frames as it arrives (as the server
        // splits it), never held whole.
        let held = pending.len() - ready;
        if held >= MAX_CHUNK {
            ready += (held / MAX_CHUNK) * MAX_CHUNK;
        }
        self.encode_frames(&pending[..ready], out);
        pending.drain(..ready);
        if pending.is_empty() && pending.capacity() > 1 << 20 {
            pending = Vec::new();
        }
        self.pending = pending;
    }

    /// Frames whatever plain bytes still wait (a flush: the peer must see what was written).
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        self.encode_frames(&pending, out);
        self.pending = pending;
        self.pending.clear();
        if self.pending.capacity() > 1 << 20 {
            self.pending = Vec::new();
        }
    }

    fn encode_frames(&mut self, plain: &[u8], out: &mut BytesMut) {
        for chunk in plain.chunks(MAX_CHUNK) {
            let start = out.len();
            out.put_slice(&[0; FRAME_HEADER]);
            let (clen, ulen) = if chunk.len() < MIN_COMPRESS {
                out.put_slice(chunk);
                (chunk.len(), 0)
            } else {
                let mut enc = ZlibEncoder::new(
                    Vec::with_capacity(chunk.len() / 2 + 64),
                    Compression::fast(),
                );
                let compressed = enc.write_all(chunk).and_then(|_| enc.finish());
                match compressed {
                    Ok(c) if c.len() < chunk.len() => {
                        out.put_slice(&c);
                        (c.len(), chunk.len())
                    }
                    _ => {
                        out.put_slice(chunk);
                        (chunk.len(), 0)
                    }
                }
            };
            let header = &mut out[start..start + FRAME_HEADER];
            header[0] = clen as u8;
            header[1] = (clen >> 8) as u8;
            header[2] = (clen >> 16) as u8;
            header[3] = self.seq;
            header[4] = ulen as u8;
            header[5] = (ulen >> 8) as u8;
            header[6] = (ulen >> 16) as u8;
            self.seq = self.seq.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_small_and_large() {
        for len in [0usize, 10, 63, 64, 1000, 100_000] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 7) as u8).collect();
            let mut a = Compressor::default();
            let mut wire = BytesMut::new();
            a.encode_frames(&plain, &mut wire);
            let mut b = Compressor::default();
            b.incoming.extend_from_slice(&wire);
            let mut out = BytesMut::new();
            let n = b.decode(&mut out, 1 << 24).unwrap();
            assert_eq!(n, len);
            assert_eq!(&out[..], &plain[..]);
            assert_eq!(
                b.seq,
                u8::from(len > 0),
                "next frame continues the sequence"
            );
        }
    }

    #[test]
    fn partial_frames_wait_and_garbage_is_an_error() {
        let mut a = Compressor::default();
        let mut wire = BytesMut::new();
        a.encode_frames(&[5u8; 500], &mut wire);
        let mut b = Compressor::default();
        b.incoming.extend_from_slice(&wire[..wire.len() - 1]);
        let mut out = BytesMut::new();
        assert_eq!(b.decode(&mut out, 1 << 24).unwrap(), 0);
        let mut c = Compressor::default();
        c.incoming
            .extend_from_slice(&[5, 0, 0, 0, 100, 0, 0, 1, 2, 3, 4, 5]);
        assert!(c.decode(&mut out, 1 << 24).is_err());
    }

    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![
            payload.len() as u8,
            (payload.len() >> 8) as u8,
            (payload.len() >> 16) as u8,
            seq,
        ];
        v.extend_from_slice(payload);
        v
    }

    fn decode_all(c: &mut Compressor, wire: &[u8]) -> BytesMut {
        c.incoming.extend_from_slice(wire);
        let mut out = BytesMut::new();
        c.decode(&mut out, 1 << 30).unwrap();
        out
    }

    #[test]
    fn replies_are_numbered_from_the_last_frame_read() {
        // A client sends a command in four frames (seq 0..=3), as Connector/C does for 20 MiB.
        let mut client = Compressor::default();
        let mut wire = BytesMut::new();
        for _ in 0..4 {
            client.encode_frames(&[0u8; 10], &mut wire);
        }
        let mut server = Compressor::default();
        decode_all(&mut server, &wire);
        // The reply (an OK relayed with the backend's numbering, 2) becomes frame 4, packet 4;
        // a result set of several packets, written in pieces with a header split across two
        // writes, continues 5, 6, 7.
        let mut out = BytesMut::new();
        server.encode(&packet(2, &[0, 0, 0, 2, 0, 0, 0]), &mut out);
        let mut reader = Compressor::default();
        let plain = decode_all(&mut reader, &out);
        assert_eq!((reader.seq, plain[3]), (5, 4));
        let stream = [packet(1, b"abc"), packet(2, &[7u8; 100]), packet(3, b"z")].concat();
        let mut out = BytesMut::new();
        server.encode(&stream[..2], &mut out);
        server.encode(&stream[2..50], &mut out);
        server.encode(&stream[50..], &mut out);
        let plain = decode_all(&mut reader, &out);
        assert_eq!(plain.len(), stream.len());
        assert_eq!((plain[3], plain[10], plain[114]), (5, 6, 7));
        assert_eq!(&plain[4..7], b"abc");
    }

    #[test]
    fn continuation_chunks_of_a_large_packet_are_renumbered_too() {
        let mut server = Compressor::default();
        let mut plain = packet(0, &[]);
        plain[..3].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        plain.resize(4 + MAX_CHUNK, 1);
        plain.extend_from_slice(&packet(0, b"tail"));
        let mut out = BytesMut::new();
        server.encode(&plain, &mut out);
        let mut reader = Compressor::default();
        let back = decode_all(&mut reader, &out);
        assert_eq!(back[3], 0);
        assert_eq!(back[4 + MAX_CHUNK + 3], 1);
        assert_eq!(&back[back.len() - 4..], b"tail");
    }

    #[test]
    fn a_packet_written_in_pieces_travels_in_one_frame() {
        // A 1 MB row passed on in 16 KiB pieces, as the relay does: one frame, as from the
        // server (Connector/Python reads a packet from at most two frames).
        let row = packet(1, &vec![b'x'; 1_000_000]);
        let mut server = Compressor::default();
        let mut out = BytesMut::new();
        for piece in row.chunks(16 * 1024) {
            server.encode(piece, &mut out);
        }
        server.finish(&mut out);
        let mut reader = Compressor::default();
        reader.incoming.extend_from_slice(&out);
        let mut plain = BytesMut::new();
        let mut frames = 0;
        while reader.incoming.len() >= FRAME_HEADER {
            let before = reader.incoming.len();
            reader.decode(&mut plain, 1 << 30).unwrap();
            assert!(reader.incoming.len() < before);
            frames += 1;
        }
        assert_eq!(reader.seq, 1, "one frame");
        assert_eq!(frames, 1);
        assert_eq!(plain.len(), row.len());
        // Pieces of an unfinished packet wait; finish() sends them.
        let mut out = BytesMut::new();
        server.encode(&packet(2, b"abcdef")[..7], &mut out);
        assert!(out.is_empty());
        server.finish(&mut out);
        assert!(!out.is_empty());
    }
}
