//! Reporting finished statements to the per-query statistics (`stats.digests`): the session
//! says what ran, for whom, where, how long and with what result; the observer fingerprints and
//! counts it. Nothing is done when statistics are off.

use std::time::Duration;

use crate::DestRole;

use crate::observer::StatementDone;
use crate::relay::RelayOutcome;
use crate::session::Session;

impl Session {
    /// A statement (`sql`: its text, without the command byte; `digest`: its digest when
    /// already known) finished on a server.
    pub(crate) fn statement_done(
        &self,
        sql: &[u8],
        digest: Option<rwproxy_sql::DigestId>,
        role: DestRole,
        elapsed: Duration,
        outcome: &RelayOutcome,
    ) {
        if !self.ctx.observer.wants_statements() {
            return;
        }
        self.ctx.observer.statement_done(&StatementDone {
            sql,
            digest,
            user: &self.who.user,
            schema: self.state.schema.as_deref(),
            role,
            elapsed,
            rows: outcome.rows,
            error: outcome.error_code.is_some(),
            options: self.classify_options(),
        });
    }
}
