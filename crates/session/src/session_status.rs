//! Session status that describes the client's own connection. `SHOW STATUS LIKE 'Ssl_version'`
//! or `... 'Compression'` is answered by the backend connection, which is rwproxy's own hop (no
//! TLS, no compression, or other ones); a client checking its connection that way must see
//! its own. In the results of statements that name `STATUS` (see [`crate::words`]), the values of
//! `Compression`, `Ssl_version` and `Ssl_cipher` are replaced by the client connection's.
//!
//! Pure functions over packets; the relay calls them.

use bytes::{BufMut, BytesMut};
use rwproxy_protocol::lenenc;

use crate::coldef;

/// What the client's connection is, as the server would report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHop {
    pub compression: bool,
    /// TLS version and cipher, as OpenSSL names them (`None`: plain).
    pub tls: Option<(&'static str, String)>,
}

impl ClientHop {
    /// The value a status variable of the connection has, for those that describe it.
    fn value(&self, variable: &[u8]) -> Option<&str> {
        if variable.eq_ignore_ascii_case(b"Compression") {
            Some(if self.compression { "ON" } else { "OFF" })
        } else if variable.eq_ignore_ascii_case(b"Ssl_version") {
            Some(self.tls.as_ref().map_or("", |t| t.0))
        } else if variable.eq_ignore_ascii_case(b"Ssl_cipher") {
            Some(self.tls.as_ref().map_or("", |t| t.1.as_str()))
        } else {
            None
        }
    }
}

/// Which role a result column plays: the variable's name, or its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusColumn {
    Name,
    Value,
}

/// The role of the column described by `def`, if it is a status result's.
pub fn status_column(def: &[u8]) -> Option<StatusColumn> {
    let n = coldef::names(def)?;
    let name = if n.org_name.is_empty() {
        n.name
    } else {
        n.org_name
    };
    if name.eq_ignore_ascii_case(b"Variable_name") {
        Some(StatusColumn::Name)
    } else if name.eq_ignore_ascii_case(b"Value") || name.eq_ignore_ascii_case(b"VARIABLE_VALUE") {
        Some(StatusColumn::Value)
    } else {
        None
    }
}

/// Rewrites a text row whose `name` cell is a variable of the connection: its `value` cell gets
/// the client hop's value. Returns `true` (the new row in `out`) when it changed.
pub fn rewrite_row(
    row: &[u8],
    name: usize,
    value: usize,
    hop: &ClientHop,
    out: &mut BytesMut,
) -> bool {
    // Cell spans: (start, end) of each lenenc cell (NULL is one byte).
    let mut cells: [(usize, usize); 2] = [(0, 0); 2];
    let (mut pos, mut index, mut found) = (0usize, 0usize, 0usize);
    while pos < row.len() && found < 2 {
        let start = pos;
        if row[pos] == 0xFB {
            pos += 1;
        } else {
            match lenenc::read_str(&row[pos..]) {
                Ok((_, used)) => pos += used,
                Err(_) => return false,
            }
        }
        if index == name {
            cells[0] = (start, pos);
            found += 1;
        }
        if index == value {
            cells[1] = (start, pos);
            found += 1;
        }
        index += 1;
    }
    if found < 2 {
        return false;
    }
    let Ok((variable, _)) = lenenc::read_str(&row[cells[0].0..cells[0].1]) else {
        return false;
    };
    let Some(wanted) = hop.value(variable) else {
        return false;
    };
    let (start, end) = cells[1];
    if lenenc::read_str(&row[start..end]).is_ok_and(|(v, _)| v == wanted.as_bytes()) {
        return false;
    }
    out.clear();
    out.put_slice(&row[..start]);
    lenenc::put_str(out, wanted.as_bytes());
    out.put_slice(&row[end..]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coldef::tests::coldef;

    fn row(cells: &[&str]) -> Vec<u8> {
        let mut r = BytesMut::new();
        for c in cells {
            lenenc::put_str(&mut r, c.as_bytes());
        }
        r.to_vec()
    }

    #[test]
    fn columns_and_rows() {
        assert_eq!(
            status_column(&coldef("", "", "", "Variable_name", "", 253)),
            Some(StatusColumn::Name)
        );
        assert_eq!(
            status_column(&coldef(
                "information_schema",
                "SESSION_STATUS",
                "SESSION_STATUS",
                "v",
                "VARIABLE_VALUE",
                253
            )),
            Some(StatusColumn::Value)
        );
        assert_eq!(status_column(&coldef("app", "t", "t", "id", "id", 3)), None);
        let hop = ClientHop {
            compression: true,
            tls: Some(("TLSv1.3", "TLS_AES_256_GCM_SHA384".into())),
        };
        let mut out = BytesMut::new();
        assert!(rewrite_row(
            &row(&["Compression", "OFF"]),
            0,
            1,
            &hop,
            &mut out
        ));
        assert_eq!(&out[..], &row(&["Compression", "ON"])[..]);
        assert!(rewrite_row(
            &row(&["ssl_version", ""]),
            0,
            1,
            &hop,
            &mut out
        ));
        assert_eq!(&out[..], &row(&["ssl_version", "TLSv1.3"])[..]);
        // Other variables, an already right value, malformed rows: unchanged.
        assert!(!rewrite_row(&row(&["Uptime", "5"]), 0, 1, &hop, &mut out));
        assert!(!rewrite_row(
            &row(&["Compression", "ON"]),
            0,
            1,
            &hop,
            &mut out
        ));
        assert!(!rewrite_row(&[0xFC], 0, 1, &hop, &mut out));
        let plain = ClientHop {
            compression: false,
            tls: None,
        };
        assert!(rewrite_row(
            &row(&["Ssl_cipher", "X"]),
            0,
            1,
            &plain,
            &mut out
        ));
        assert_eq!(&out[..], &row(&["Ssl_cipher", ""])[..]);
    }
}
