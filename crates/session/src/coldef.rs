//! Reading and rewriting a column definition packet (`ColumnDefinition41`): six
//! length-encoded strings (catalog, schema, table, org_table, name, org_name), then the fixed
//! part (length 0x0c, charset, column length, type, flags, decimals). Used where rwproxy must
//! show a client what the server would have sent it.

use bytes::{BufMut, BytesMut};
use rwproxy_protocol::lenenc;

/// The six names of a column definition, and where the fixed part starts.
pub struct Names<'a> {
    pub schema: &'a [u8],
    pub table: &'a [u8],
    pub org_table: &'a [u8],
    pub name: &'a [u8],
    pub org_name: &'a [u8],
    /// Offset of `name`'s length prefix, and of the byte after it.
    name_span: (usize, usize),
    /// The fixed part (from its 0x0c length byte on).
    pub fixed: &'a [u8],
}

/// Parses the names of a column definition (`None` when it is not one).
pub fn names(def: &[u8]) -> Option<Names<'_>> {
    let mut pos = 0usize;
    let mut fields: [&[u8]; 6] = [&[]; 6];
    let mut name_span = (0, 0);
    for (i, slot) in fields.iter_mut().enumerate() {
        let (s, used) = lenenc::read_str(def.get(pos..)?).ok()?;
        if i == 4 {
            name_span = (pos, pos + used);
        }
        *slot = s;
        pos += used;
    }
    let [_catalog, schema, table, org_table, name, org_name] = fields;
    Some(Names {
        schema,
        table,
        org_table,
        name,
        org_name,
        name_span,
        fixed: &def[pos..],
    })
}

/// The column type byte of the fixed part.
pub fn column_type(n: &Names<'_>) -> Option<u8> {
    n.fixed.get(7).copied()
}

/// Writes `def` with its `name` replaced by `new_name` into `out`.
pub fn with_name(def: &[u8], n: &Names<'_>, new_name: &[u8], out: &mut BytesMut) {
    out.clear();
    out.put_slice(&def[..n.name_span.0]);
    lenenc::put_str(out, new_name);
    out.put_slice(&def[n.name_span.1..]);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn coldef(
        schema: &str,
        table: &str,
        org_table: &str,
        name: &str,
        org: &str,
        ty: u8,
    ) -> Vec<u8> {
        let mut d = Vec::new();
        for s in ["def", schema, table, org_table, name, org] {
            d.push(s.len() as u8);
            d.extend_from_slice(s.as_bytes());
        }
        d.extend_from_slice(&[0x0c, 63, 0, 21, 0, 0, 0, ty, 0x81, 0, 0, 0, 0]);
        d
    }

    #[test]
    fn parse_and_rename() {
        let d = coldef("app", "t", "t", "42", "", 8);
        let n = names(&d).unwrap();
        assert_eq!(
            (n.schema, n.table, n.name),
            (&b"app"[..], &b"t"[..], &b"42"[..])
        );
        assert_eq!(column_type(&n), Some(8));
        let mut out = BytesMut::new();
        with_name(&d, &n, b"CONNECTION_ID()", &mut out);
        assert_eq!(
            &out[..],
            &coldef("app", "t", "t", "CONNECTION_ID()", "", 8)[..]
        );
        assert!(names(&[3, b'a']).is_none());
        assert!(names(&[]).is_none());
    }
}
