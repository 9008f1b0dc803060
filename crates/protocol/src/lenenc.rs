//! Length-encoded integers and strings.

use bytes::{BufMut, BytesMut};

use crate::ProtocolError;

/// Reads a length-encoded integer from the front of `buf`; returns the value and bytes used.
/// `0xFB` (NULL in rows) and `0xFF` are not integers and give an error.
#[inline]
pub fn read_int(buf: &[u8]) -> Result<(u64, usize), ProtocolError> {
    let first = *buf
        .first()
        .ok_or(ProtocolError::Truncated("length-encoded integer"))?;
    let need = match first {
        0..=0xFA => return Ok((first as u64, 1)),
        0xFC => 3,
        0xFD => 4,
        0xFE => 9,
        _ => return Err(ProtocolError::Malformed("length-encoded integer")),
    };
    if buf.len() < need {
        return Err(ProtocolError::Truncated("length-encoded integer"));
    }
    let mut v = 0u64;
    for (i, b) in buf[1..need].iter().enumerate() {
        v |= (*b as u64) << (8 * i);
    }
    Ok((v, need))
}

/// Reads a length-encoded string; returns it and the bytes used.
#[inline]
pub fn read_str(buf: &[u8]) -> Result<(&[u8], usize), ProtocolError> {
    let (len, used) = read_int(buf)?;
    let end = used
        .checked_add(usize::try_from(len).map_err(|_| ProtocolError::Malformed("string length"))?)
        .ok_or(ProtocolError::Malformed("string length"))?;
    if buf.len() < end {
        return Err(ProtocolError::Truncated("length-encoded string"));
    }
    Ok((&buf[used..end], end))
}

/// Appends a length-encoded integer.
pub fn put_int(out: &mut BytesMut, v: u64) {
    match v {
        0..=0xFA => out.put_u8(v as u8),
        0xFB..=0xFFFF => {
            out.put_u8(0xFC);
            out.put_u16_le(v as u16);
        }
        0x1_0000..=0xFF_FFFF => {
            out.put_u8(0xFD);
            out.put_uint_le(v, 3);
        }
        _ => {
            out.put_u8(0xFE);
            out.put_u64_le(v);
        }
    }
}

/// Appends a length-encoded string.
pub fn put_str(out: &mut BytesMut, s: &[u8]) {
    put_int(out, s.len() as u64);
    out.put_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_roundtrip() {
        for v in [
            0u64,
            1,
            250,
            251,
            0xFFFF,
            0x1_0000,
            0xFF_FFFF,
            0x100_0000,
            u64::MAX,
        ] {
            let mut b = BytesMut::new();
            put_int(&mut b, v);
            assert_eq!(read_int(&b).unwrap(), (v, b.len()));
        }
    }

    #[test]
    fn truncated_and_bad() {
        assert!(read_int(&[]).is_err());
        assert!(read_int(&[0xFC, 1]).is_err());
        assert!(read_int(&[0xFF]).is_err());
        assert!(read_str(&[5, b'a']).is_err());
        assert!(read_str(&[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
        assert_eq!(read_str(&[2, b'a', b'b', b'c']).unwrap(), (&b"ab"[..], 3));
    }
}
