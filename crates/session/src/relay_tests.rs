//! The relay over in-memory streams: what reaches the client is byte for byte what the server
//! sent, whatever the shape of the reply, and a server that fails or sends what cannot be
//! followed ends the relay with the right error (retryable only when nothing was sent on).

use bytes::BytesMut;
use rwproxy_protocol::response::Expect;
use rwproxy_transport::{MaybeTls, PacketStream, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{relay_response, Progress, RelayError, RelayOptions, RelayOutcome};

const MAX: usize = 64 << 20;

/// One packet on the wire (split as the protocol splits payloads of 16 MiB - 1 and more).
fn packet(seq: &mut u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    let mut rest = payload;
    loop {
        let n = rest.len().min(0xff_ffff);
        out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        out.push(*seq);
        *seq = seq.wrapping_add(1);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        if n < 0xff_ffff {
            return out;
        }
    }
}

fn lenenc_str(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() < 251 {
        out.push(s.len() as u8);
    } else if s.len() < 1 << 16 {
        out.push(0xfc);
        out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    } else if s.len() < 1 << 24 {
        out.push(0xfd);
        out.extend_from_slice(&(s.len() as u32).to_le_bytes()[..3]);
    } else {
        out.push(0xfe);
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(s);
}

fn ok(status: u16) -> Vec<u8> {
    let mut p = vec![0x00, 0x01, 0x00];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes());
    p
}

fn eof(status: u16) -> Vec<u8> {
    let mut p = vec![0xfe, 0x00, 0x00];
    p.extend_from_slice(&status.to_le_bytes());
    p
}

fn err(code: u16) -> Vec<u8> {
    let mut p = vec![0xff];
    p.extend_from_slice(&code.to_le_bytes());
    p.extend_from_slice(b"#42S02Table 'app.nope' doesn't exist");
    p
}

fn column(name: &str) -> Vec<u8> {
    let mut p = Vec::new();
    for s in [
        &b"def"[..],
        b"app",
        b"t",
        b"t",
        name.as_bytes(),
        name.as_bytes(),
    ] {
        lenenc_str(&mut p, s);
    }
    p.push(0x0c);
    p.extend_from_slice(&33u16.to_le_bytes());
    p.extend_from_slice(&255u32.to_le_bytes());
    p.push(0xfd); // VAR_STRING
    p.extend_from_slice(&0u16.to_le_bytes());
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p
}

/// A text result set of one column (with EOF packets, no `CLIENT_DEPRECATE_EOF`).
fn result_set(rows: &[Vec<u8>], status: u16) -> Vec<u8> {
    let mut seq = 1u8;
    let mut wire = packet(&mut seq, &[0x01]);
    wire.extend(packet(&mut seq, &column("c")));
    wire.extend(packet(&mut seq, &eof(status)));
    for row in rows {
        let mut p = Vec::new();
        lenenc_str(&mut p, row);
        wire.extend(packet(&mut seq, &p));
    }
    wire.extend(packet(&mut seq, &eof(status)));
    wire
}

fn options(expect: Expect) -> RelayOptions<'static> {
    RelayOptions {
        expect,
        deprecate_eof: false,
        backend_session_track: false,
        strip_session_state: false,
        hide_own_tracking: false,
        rewrite_stmt_id: None,
        process_list: None,
        column_names: None,
        client_hop: None,
        checksum: false,
    }
}

struct Rig {
    /// rwproxy's ends.
    backend: PacketStream,
    client: PacketStream,
    /// The server's and the client's ends.
    server: DuplexStream,
    client_peer: DuplexStream,
}

fn rig() -> Rig {
    let (backend, server) = tokio::io::duplex(1 << 20);
    let (client, client_peer) = tokio::io::duplex(1 << 20);
    Rig {
        backend: PacketStream::new(MaybeTls::Duplex(backend), MAX),
        client: PacketStream::new(MaybeTls::Duplex(client), MAX),
        server,
        client_peer,
    }
}

/// Sends `wire` from the server (closing its end afterwards when `close`), relays, and returns
/// the relay's result with every byte the client received.
async fn relay(
    wire: Vec<u8>,
    close: bool,
    opts: RelayOptions<'static>,
) -> (Result<RelayOutcome, RelayError>, Vec<u8>, Progress) {
    let Rig {
        mut backend,
        mut client,
        mut server,
        mut client_peer,
    } = rig();
    let writer = tokio::spawn(async move {
        server.write_all(&wire).await.unwrap();
        if close {
            drop(server);
        } else {
            // Kept open until the relay is over, as a server keeps its connection.
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        }
    });
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        client_peer.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut scratch = BytesMut::new();
    let mut progress = Progress::default();
    let result = relay_response(&mut backend, &mut client, opts, &mut scratch, &mut progress).await;
    writer.abort();
    drop(client);
    (result, reader.await.unwrap(), progress)
}

#[tokio::test]
async fn an_ok_is_relayed_byte_for_byte_with_its_status() {
    let wire = packet(&mut 1, &ok(0x0002));
    let (result, got, _) = relay(wire.clone(), false, options(Expect::ResultSet)).await;
    let outcome = result.unwrap();
    assert_eq!(got, wire);
    assert!(outcome.saw_ok);
    assert_eq!(outcome.status.map(|s| s.bits()), Some(0x0002));
    assert_eq!(outcome.error_code, None);
}

#[tokio::test]
async fn an_error_is_relayed_byte_for_byte_with_its_code() {
    let wire = packet(&mut 1, &err(1146));
    let (result, got, _) = relay(wire.clone(), false, options(Expect::ResultSet)).await;
    assert_eq!(got, wire);
    assert_eq!(result.unwrap().error_code, Some(1146));
}

#[tokio::test]
async fn many_rows_are_relayed_byte_for_byte_and_counted() {
    let rows: Vec<Vec<u8>> = (0..5000)
        .map(|i| format!("row number {i}").into_bytes())
        .collect();
    let wire = result_set(&rows, 0x0002);
    let (result, got, _) = relay(wire.clone(), false, options(Expect::ResultSet)).await;
    let outcome = result.unwrap();
    assert_eq!(got.len(), wire.len());
    assert!(
        got == wire,
        "the client received other bytes than the server sent"
    );
    assert_eq!(outcome.rows, 5000);
}

#[tokio::test]
async fn a_row_larger_than_one_packet_is_relayed_whole() {
    // 17 MiB: split on the wire into a 16 MiB - 1 chunk and the rest.
    let big = vec![b'x'; 17 << 20];
    let wire = result_set(&[big, b"small".to_vec()], 0x0002);
    let (result, got, _) = relay(wire.clone(), false, options(Expect::ResultSet)).await;
    let outcome = result.unwrap();
    assert_eq!(got.len(), wire.len());
    assert!(got == wire);
    assert_eq!(outcome.rows, 2);
}

#[tokio::test]
async fn a_server_gone_before_any_byte_is_a_retryable_failure() {
    let (result, got, progress) = relay(Vec::new(), true, options(Expect::ResultSet)).await;
    match result {
        Err(RelayError::Backend {
            sent_to_client: false,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(got.is_empty());
    assert!(!progress.sent);
}

#[tokio::test]
async fn a_server_gone_mid_result_is_reported_as_sent() {
    let rows: Vec<Vec<u8>> = (0..100).map(|i| vec![b'a' + (i % 26) as u8; 40]).collect();
    let mut wire = result_set(&rows, 0x0002);
    // Cut in the middle of the rows (and in the middle of a packet).
    wire.truncate(wire.len() / 2 + 3);
    let (result, got, progress) = relay(wire.clone(), true, options(Expect::ResultSet)).await;
    match result {
        Err(RelayError::Backend {
            sent_to_client: true,
            source,
            ..
        }) => assert!(
            matches!(
                source,
                TransportError::Closed | TransportError::ClosedMidPacket
            ),
            "{source:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(progress.sent);
    // What reached the client is a prefix of what the server sent: nothing invented.
    assert!(
        wire.starts_with(&got),
        "{} of {} bytes",
        got.len(),
        wire.len()
    );
}

#[tokio::test]
async fn a_reply_that_cannot_be_followed_is_a_protocol_error_of_this_connection() {
    for payload in [
        // A column count of zero written as a 3-byte length-encoded integer.
        vec![0xfc, 0x00, 0x00],
        // An empty packet.
        Vec::new(),
    ] {
        let wire = packet(&mut 1, &payload);
        let (result, _, _) = relay(wire, false, options(Expect::ResultSet)).await;
        match result {
            Err(RelayError::Backend {
                source: TransportError::Protocol(_),
                ..
            }) => {}
            other => panic!("{payload:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_gone_ends_the_relay_as_the_clients_failure() {
    let Rig {
        mut backend,
        mut client,
        mut server,
        client_peer,
    } = rig();
    drop(client_peer);
    let rows: Vec<Vec<u8>> = (0..2000).map(|_| vec![b'z'; 200]).collect();
    let wire = result_set(&rows, 0x0002);
    let writer = tokio::spawn(async move {
        let _ = server.write_all(&wire).await;
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    });
    let mut scratch = BytesMut::new();
    let mut progress = Progress::default();
    let result = relay_response(
        &mut backend,
        &mut client,
        options(Expect::ResultSet),
        &mut scratch,
        &mut progress,
    )
    .await;
    writer.abort();
    assert!(matches!(result, Err(RelayError::Client(_))), "{result:?}");
}

/// The checksum transaction replay records, fed as the relay forwards (a large row in pieces),
/// equals the checksum of the same packets fed whole, and another row gives another one.
#[tokio::test]
async fn the_relay_checksums_what_it_forwards() {
    use crate::replay::ResultChecksum;
    use rwproxy_protocol::response::PacketKind;
    let expected = |rows: &[Vec<u8>]| {
        let mut c = ResultChecksum::default();
        c.whole_packet(PacketKind::ColumnCount, &[0x01]);
        c.whole_packet(PacketKind::Column, &column("c"));
        for row in rows {
            let mut p = Vec::new();
            lenenc_str(&mut p, row);
            c.whole_packet(PacketKind::Row, &p);
        }
        c.finish()
    };
    let rows = vec![vec![b'x'; 17 << 20], b"small".to_vec()];
    let mut opts = options(Expect::ResultSet);
    opts.checksum = true;
    let (result, _, _) = relay(result_set(&rows, 0x0002), false, opts).await;
    let got = result.unwrap().checksum;
    assert_eq!(got, Some(expected(&rows)));
    let other = vec![vec![b'x'; 17 << 20], b"smalL".to_vec()];
    assert_ne!(got, Some(expected(&other)));
    // Not asked for: not computed.
    let (result, _, _) = relay(result_set(&rows, 0x0002), false, options(Expect::ResultSet)).await;
    assert_eq!(result.unwrap().checksum, None);
}
