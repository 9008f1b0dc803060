//! Packet framing: `check_logical` on any bytes never panics; when it finds a packet,
//! `take_logical` returns exactly its payload, and encoding that payload frames it again.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rwproxy_protocol::frame;

fuzz_target!(|data: &[u8]| {
    let (max, bytes) = match data.split_first() {
        Some((m, rest)) => (usize::from(*m) << 12, rest),
        None => return,
    };
    for check_sequence in [true, false] {
        if let Ok(Some(info)) = frame::check_logical_with(bytes, max, check_sequence) {
            assert!(info.wire_len <= bytes.len());
            assert!(info.payload_len <= max);
            let mut buf = BytesMut::from(bytes);
            let payload = frame::take_logical(&mut buf, &info);
            assert_eq!(payload.len(), info.payload_len);
            assert_eq!(buf.len(), bytes.len() - info.wire_len);
            let mut again = BytesMut::new();
            let mut seq = info.first_seq;
            frame::encode_packet(&mut again, &mut seq, &payload);
            let back = frame::check_logical(&again, usize::MAX)
                .expect("a packet rwproxy encodes is well formed")
                .expect("and complete");
            assert_eq!(back.payload_len, payload.len());
        }
    }
});
