//! A transaction left on a server that is no longer the primary (a switchover made elsewhere
//! while it was open): the client's next `BEGIN` would commit it there implicitly and start the
//! new one there too, so the session would never reach the new primary — every write of every
//! following transaction refused by the old, read-only primary (1290). rwproxy does the
//! implicit commit itself on the old server and lets the `BEGIN` start on the new primary. When
//! that commit fails (the old primary, read-only now, refuses to commit the transaction's
//! writes), the transaction is rolled back there and the `BEGIN` answered with the server's
//! error and why, so that the client's retry starts afresh on the new primary.

use rwproxy_monitor::PrimaryState;

use crate::error::ClientError;
use crate::session::Session;

impl Session {
    /// Before a `BEGIN`: ends a transaction left on a former primary. `Ok(true)` when the
    /// client was answered (the `BEGIN` is not run).
    pub(crate) async fn end_transaction_on_former_primary(&mut self) -> Result<bool, ClientError> {
        // A recorded transaction is replayed on the new primary instead (transaction replay);
        // one that stopped being replayable stays where it is, and is ended here as without
        // replay.
        if !self.state.in_transaction() || self.replay.recording() {
            return Ok(false);
        }
        let Some(old) = self.state.transaction_backend.clone() else {
            return Ok(false);
        };
        let new = match &self.ctx.monitor().current().primary {
            PrimaryState::One(p) if *p != old => p.clone(),
            _ => return Ok(false),
        };
        let Some(slot) = self.backends.get_mut(&old) else {
            return Ok(false);
        };
        let commit = slot.conn.query("COMMIT").await;
        let refused = match commit {
            Ok(outcome) if outcome.is_ok() => {
                tracing::info!(from = %old, to = %new, "a transaction left on the former primary was committed there (the BEGIN that followed commits it implicitly); the new transaction starts on the primary");
                self.state.transaction_gone();
                return Ok(false);
            }
            Ok(outcome) => outcome.error,
            Err(e) => {
                // The connection is gone, and the transaction with it.
                tracing::info!(from = %old, to = %new, error = %e, "the connection holding a transaction left on the former primary was lost");
                self.drop_connection(&old);
                self.publish_threads();
                self.state.transaction_gone();
                return Ok(false);
            }
        };
        let (code, state, message) = refused.unwrap_or((1290, *b"HY000", String::new()));
        if let Some(slot) = self.backends.get_mut(&old) {
            if slot.conn.query("ROLLBACK").await.is_err() {
                self.drop_connection(&old);
                self.publish_threads();
            }
        }
        self.state.transaction_gone();
        tracing::info!(from = %old, to = %new, code, %message, "a transaction left on the former primary could not be committed there; rolled back");
        self.send_error(
            1,
            (code, &state),
            format!(
                "{message} (rwproxy: this transaction was open on '{old}', which is no longer the primary ('{new}' is); it was rolled back there, start it again)"
            ),
        )
        .await?;
        Ok(true)
    }
}
