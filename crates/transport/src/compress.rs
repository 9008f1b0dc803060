//! The compressed protocol (`CLIENT_COMPRESS`): ordinary packets travel inside compressed
//! frames `3-byte compressed length | 1-byte sequence id | 3-byte uncompressed length |
//! zlib data` (uncompressed length 0: the data is stored as is). Frames have their own sequence
//! ids; a reply's frames continue from the last frame the peer sent.

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
}

impl Compressor {
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
        }
    }

    /// Encodes `plain` as frames appended to `out`.
    pub fn encode(&mut self, plain: &[u8], out: &mut BytesMut) {
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
            a.encode(&plain, &mut wire);
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
        a.encode(&[5u8; 500], &mut wire);
        let mut b = Compressor::default();
        b.incoming.extend_from_slice(&wire[..wire.len() - 1]);
        let mut out = BytesMut::new();
        assert_eq!(b.decode(&mut out, 1 << 24).unwrap(), 0);
        let mut c = Compressor::default();
        c.incoming
            .extend_from_slice(&[5, 0, 0, 0, 100, 0, 0, 1, 2, 3, 4, 5]);
        assert!(c.decode(&mut out, 1 << 24).is_err());
    }
}
