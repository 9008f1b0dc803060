//! The connection phase parsers on any input: no panic; a greeting that parses encodes and
//! parses back to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rwproxy_protocol::handshake;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = handshake::parse_greeting(data) {
        if g.nonce.len() == 20 && !g.server_version.contains('\0') && !g.auth_plugin.contains('\0') {
            let mut out = BytesMut::new();
            handshake::encode_greeting(&mut out, &g);
            let back = handshake::parse_greeting(&out).expect("an encoded greeting parses");
            assert_eq!(back.server_version, g.server_version);
            assert_eq!(back.connection_id, g.connection_id);
        }
    }
    let _ = handshake::is_ssl_request(data);
    let _ = handshake::parse_client_handshake(data);
    let _ = handshake::parse_change_user(data);
    let _ = handshake::parse_auth_switch(data);
});
