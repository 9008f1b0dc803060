//! The bounded set of MySQL/MariaDB error codes that get their own `code` label.
//!
//! `rwproxy_errors_total{code}` must not grow one series per distinct code a backend can
//! return, so only the codes below are exported as themselves; every other code is counted
//! under `code="other"`.

use std::fmt::Write as _;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

/// Error codes exported with their own label value, sorted ascending.
pub const KNOWN_ERROR_CODES: [u16; 31] = [
    1040, // ER_CON_COUNT_ERROR: too many connections
    1041, // ER_OUT_OF_RESOURCES (rwproxy: large_packet_budget spent)
    1043, // ER_HANDSHAKE_ERROR: bad handshake
    1044, // ER_DBACCESS_DENIED_ERROR
    1045, // ER_ACCESS_DENIED_ERROR
    1047, // ER_UNKNOWN_COM_ERROR: unknown command
    1049, // ER_BAD_DB_ERROR: unknown database
    1053, // ER_SERVER_SHUTDOWN
    1054, // ER_BAD_FIELD_ERROR
    1062, // ER_DUP_ENTRY
    1064, // ER_PARSE_ERROR
    1105, // ER_UNKNOWN_ERROR
    1129, // ER_HOST_IS_BLOCKED (rwproxy: login_throttle)
    1142, // ER_TABLEACCESS_DENIED_ERROR
    1146, // ER_NO_SUCH_TABLE
    1152, // ER_ABORTING_CONNECTION
    1153, // ER_NET_PACKET_TOO_LARGE
    1156, // ER_NET_PACKETS_OUT_OF_ORDER
    1158, // ER_NET_READ_ERROR
    1159, // ER_NET_READ_INTERRUPTED
    1160, // ER_NET_ERROR_ON_WRITE
    1161, // ER_NET_WRITE_INTERRUPTED
    1205, // ER_LOCK_WAIT_TIMEOUT
    1213, // ER_LOCK_DEADLOCK
    1290, // ER_OPTION_PREVENTS_STATEMENT (e.g. --read-only)
    1429, // ER_CONNECT_TO_FOREIGN_DATA_SOURCE: rwproxy could not reach a backend
    1792, // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
    1835, // ER_MALFORMED_PACKET
    1927, // ER_CONNECTION_KILLED (MariaDB); rwproxy: a backend lost during a statement
    1969, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
    3159, // ER_SECURE_TRANSPORT_REQUIRED (require_tls)
];

/// Number of pre-created error counters: every known code plus "other".
pub const ERROR_SLOTS: usize = KNOWN_ERROR_CODES.len() + 1;

/// The `code` label value: a known code, or `None` for "other".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCodeLabel(pub Option<u16>);

impl ErrorCodeLabel {
    /// The label for the counter slot `slot` (see [`slot_for_code`]).
    pub fn for_slot(slot: usize) -> Self {
        ErrorCodeLabel(KNOWN_ERROR_CODES.get(slot).copied())
    }
}

impl EncodeLabelValue for ErrorCodeLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        match self.0 {
            Some(code) => write!(encoder, "{code}"),
            None => encoder.write_str("other"),
        }
    }
}

/// Index of the counter that counts `code`: its position among the known codes, or the last
/// slot ("other").
pub fn slot_for_code(code: u16) -> usize {
    KNOWN_ERROR_CODES
        .binary_search(&code)
        .unwrap_or(KNOWN_ERROR_CODES.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_are_sorted_and_unique() {
        assert!(KNOWN_ERROR_CODES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn unknown_codes_share_the_other_slot() {
        assert_eq!(slot_for_code(1040), 0);
        assert_eq!(slot_for_code(3159), KNOWN_ERROR_CODES.len() - 1);
        assert_eq!(slot_for_code(1), ERROR_SLOTS - 1);
        assert_eq!(slot_for_code(65535), ERROR_SLOTS - 1);
        assert_eq!(slot_for_code(1042), ERROR_SLOTS - 1);
        assert_eq!(
            ErrorCodeLabel::for_slot(ERROR_SLOTS - 1),
            ErrorCodeLabel(None)
        );
        assert_eq!(ErrorCodeLabel::for_slot(4), ErrorCodeLabel(Some(1045)));
    }
}
