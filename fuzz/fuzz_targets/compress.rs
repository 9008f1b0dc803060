//! The compressed protocol: decoding any bytes never panics nor produces more than the limit
//! allows; what rwproxy encodes decodes to the same plain bytes (packets renumbered only).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rwproxy_transport::Compressor;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let mut c = Compressor::default();
        c.feed(rest);
        let mut plain = BytesMut::new();
        let _ = c.decode(&mut plain, 1 << 20);
        assert!(plain.len() <= (1 << 20) + 2 * 0xFF_FFFF);
    } else {
        // Frame `rest` as one packet, write it in two pieces, decode it back.
        let mut packet = vec![
            rest.len() as u8,
            (rest.len() >> 8) as u8,
            (rest.len() >> 16) as u8,
            0,
        ];
        packet.extend_from_slice(rest);
        let cut = usize::from(mode >> 1).min(packet.len());
        let mut server = Compressor::default();
        let mut wire = BytesMut::new();
        server.encode(&packet[..cut], &mut wire);
        server.encode(&packet[cut..], &mut wire);
        server.finish(&mut wire);
        let mut client = Compressor::default();
        client.feed(&wire);
        let mut plain = BytesMut::new();
        client.decode(&mut plain, 1 << 24).expect("rwproxy's own frames decode");
        assert_eq!(&plain[4..], rest);
        assert_eq!(&plain[..3], &packet[..3]);
    }
});
