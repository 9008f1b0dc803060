//! The server-reply tracker fed any sequence of packets, for every kind of command, and the
//! OK/ERR parsers and rewriters: no panic, and a finished response takes no more packets.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rwproxy_protocol::response::{Expect, ResponseTracker};
use rwproxy_protocol::{reply, CapabilityFlags};

const EXPECTS: [Expect; 6] = [
    Expect::ResultSet,
    Expect::Prepare,
    Expect::FieldList,
    Expect::Fetch,
    Expect::OnePacket,
    Expect::Nothing,
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let expect = EXPECTS[usize::from(mode) % EXPECTS.len()];
    let mut tracker = ResponseTracker::new(expect, mode & 0x80 != 0);
    // Packets: a length byte, then that many bytes (the length given to the tracker may claim
    // more, as for a large packet seen by its prefix).
    let mut rest = rest;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (packet, next) = tail.split_at(n);
        rest = next;
        let claimed = if len == 0xFF { 0xFF_FFFF } else { packet.len() };
        let was_done = tracker.is_done();
        match tracker.on_packet(packet, claimed) {
            Ok(_) => assert!(!was_done, "a finished response took another packet"),
            Err(_) => break,
        }
        let _ = reply::parse_ok(packet, CapabilityFlags::CLIENT_SESSION_TRACK);
        let _ = reply::parse_ok(packet, CapabilityFlags::empty());
        let _ = reply::parse_err(packet);
        let mut out = BytesMut::new();
        let _ = reply::strip_session_state(packet, &mut out);
        let _ = reply::strip_system_variables(packet, &[b"last_gtid", b"sql_mode"], &mut out);
    }
});
