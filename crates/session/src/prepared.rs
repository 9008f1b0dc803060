//! Prepared statements (binary protocol). The client sees statement ids rwproxy hands out; each
//! backend that executes a statement has its own id for it, prepared lazily where it runs.

use std::collections::HashMap;

use bytes::Bytes;

/// A statement as prepared on one backend connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnBackend {
    pub backend: String,
    pub id: u32,
    /// Which version of the parameter types this backend's statement has seen (0: none).
    pub types_seen: u32,
}

#[derive(Debug)]
pub struct Prepared {
    /// The `COM_STMT_PREPARE` payload, to prepare again on another backend.
    pub prepare_payload: Bytes,
    pub params: u16,
    /// The parameter types of the last execute that sent them, and their version.
    pub types: Option<Bytes>,
    pub types_version: u32,
    pub on: Vec<OnBackend>,
    /// The backend holding an open cursor for this statement.
    pub cursor_on: Option<String>,
    /// The backend that received `COM_STMT_SEND_LONG_DATA` for the next execute.
    pub long_data_on: Option<String>,
    /// The statement's `CONNECTION_ID()` calls were replaced (result column names are mapped
    /// back).
    pub names: Option<std::sync::Arc<rwproxy_sql::connection_id::Substituted>>,
    /// The statement's digest for the query statistics, made at its first execute.
    pub digest: Option<rwproxy_sql::DigestId>,
}

impl Prepared {
    pub fn on(&self, backend: &str) -> Option<&OnBackend> {
        self.on.iter().find(|o| o.backend == backend)
    }

    pub fn on_mut(&mut self, backend: &str) -> Option<&mut OnBackend> {
        self.on.iter_mut().find(|o| o.backend == backend)
    }

    /// Forgets the statement's copy on a backend whose connection was dropped.
    pub fn forget_backend(&mut self, backend: &str) {
        self.on.retain(|o| o.backend != backend);
        if self.cursor_on.as_deref() == Some(backend) {
            self.cursor_on = None;
        }
        if self.long_data_on.as_deref() == Some(backend) {
            self.long_data_on = None;
        }
    }
}

#[derive(Debug, Default)]
pub struct PreparedSet {
    map: HashMap<u32, Prepared>,
    next_id: u32,
    /// The statement prepared last (what MariaDB's id 0xFFFFFFFF means).
    last: Option<u32>,
}

/// MariaDB: a statement id of `0xFFFFFFFF` names the statement this connection prepared last, so
/// a client can send `COM_STMT_PREPARE` and `COM_STMT_EXECUTE` without waiting for the id.
pub const LAST_PREPARED: u32 = u32::MAX;

impl PreparedSet {
    /// The id the client will know the next statement by.
    pub fn next_id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        while self.map.contains_key(&self.next_id) {
            self.next_id = self.next_id.wrapping_add(1).max(1);
        }
        self.next_id
    }

    pub fn insert(&mut self, id: u32, p: Prepared) {
        self.map.insert(id, p);
        self.last = Some(id);
    }

    /// The client's statement id, with [`LAST_PREPARED`] resolved.
    pub fn resolve(&self, id: u32) -> u32 {
        match (id, self.last) {
            (LAST_PREPARED, Some(last)) => last,
            _ => id,
        }
    }

    pub fn get(&self, id: u32) -> Option<&Prepared> {
        self.map.get(&id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut Prepared> {
        self.map.get_mut(&id)
    }

    pub fn remove(&mut self, id: u32) -> Option<Prepared> {
        self.map.remove(&id)
    }

    pub fn forget_backend(&mut self, backend: &str) {
        for p in self.map.values_mut() {
            p.forget_backend(backend);
        }
    }

    /// A statement has an open cursor or long data waiting for its execute (both live on one
    /// connection).
    pub fn holds_connection(&self) -> bool {
        self.map
            .values()
            .any(|p| p.cursor_on.is_some() || p.long_data_on.is_some())
    }

    /// Forgets a statement's id on `backend` (closed there to bound the connection's cache).
    pub fn forget_id(&mut self, backend: &str, id: u32) {
        for p in self.map.values_mut() {
            p.on.retain(|o| o.backend != backend || o.id != id);
        }
    }

    /// Forgets every statement's ids on backend connections (the connections were lent).
    pub fn forget_all_backends(&mut self) {
        for p in self.map.values_mut() {
            p.on.clear();
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.last = None;
    }
}

/// Builds the execute packet for a backend: its own statement id, and the parameter types
/// inserted when the client did not send them but this backend has not seen them yet.
pub fn execute_for_backend(
    client_payload: &[u8],
    backend_id: u32,
    params: u16,
    inject_types: Option<&[u8]>,
    out: &mut bytes::BytesMut,
) -> Result<(), rwproxy_protocol::ProtocolError> {
    use rwproxy_protocol::command;
    out.clear();
    let layout = command::execute_layout(client_payload, params)?;
    match (layout.bound_flag_at, inject_types) {
        (Some(at), Some(types)) if !layout.types_bound => {
            out.extend_from_slice(&client_payload[..at]);
            out.extend_from_slice(&[1]);
            out.extend_from_slice(types);
            out.extend_from_slice(&client_payload[at + 1..]);
        }
        _ => out.extend_from_slice(client_payload),
    }
    command::set_stmt_id(out, backend_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_nonzero() {
        let mut s = PreparedSet::default();
        let a = s.next_id();
        s.insert(
            a,
            Prepared {
                prepare_payload: Bytes::from_static(b"\x16SELECT 1"),
                params: 0,
                types: None,
                types_version: 0,
                on: vec![],
                cursor_on: None,
                long_data_on: None,
                names: None,
                digest: None,
            },
        );
        let b = s.next_id();
        assert_ne!(a, b);
        assert!(a != 0 && b != 0);
        assert_eq!(
            s.get(a).map(|p| &p.prepare_payload[1..]),
            Some(&b"SELECT 1"[..])
        );
    }

    #[test]
    fn types_are_injected_when_missing() {
        // 1 param; client execute without types: id 5, flags 0, iter 1, bitmap 0, bound 0, value
        let client = [0x17, 5, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 7, 0, 0, 0];
        let mut out = bytes::BytesMut::new();
        execute_for_backend(&client, 99, 1, Some(&[3, 0]), &mut out).unwrap();
        assert_eq!(
            &out[..],
            &[0x17, 99, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 0, 7, 0, 0, 0]
        );
        execute_for_backend(&client, 42, 1, None, &mut out).unwrap();
        assert_eq!(&out[1..5], &42u32.to_le_bytes());
        assert_eq!(out.len(), client.len());
    }
}
