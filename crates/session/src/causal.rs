//! Read-your-writes through GTIDs, the session's I/O part. Every write's GTID comes back in
//! the OK packet's session state (rwproxy switches that tracking on for its backend
//! connections) and is recorded here; the router places a read under `session` (or `global`)
//! consistency on a replica that has applied the session's (or this proxy's) newest write, or
//! asks for one to confirm it within `causal_read_timeout`, which the session does here
//! (`MASTER_GTID_WAIT` / `WAIT_FOR_EXECUTED_GTID_SET`). A session that never wrote pays nothing.

use std::sync::Arc;

use rwproxy_monitor::GtidPosition;

use crate::session::Session;

impl Session {
    /// Records the GTID a statement produced.
    pub(crate) fn note_gtid(&mut self, gtid: &str) {
        let Ok(position) = GtidPosition::parse(gtid) else {
            tracing::warn!(
                gtid,
                "unparseable GTID from session tracking; reads after this write go to the primary"
            );
            self.state.write_position_unknown = true;
            return;
        };
        match &mut self.state.last_write {
            Some(p) => {
                if Arc::make_mut(p).merge_max(&position).is_err() {
                    *p = Arc::new(position.clone());
                }
            }
            None => self.state.last_write = Some(Arc::new(position.clone())),
        }
        self.ctx.note_global_write(&position);
    }

    /// Whether `backend` applies `position` within `timeout` (false on timeout).
    pub(crate) async fn wait_for_position(
        &mut self,
        backend: &str,
        position: &GtidPosition,
        timeout: std::time::Duration,
    ) -> Result<bool, rwproxy_backend::BackendError> {
        self.drop_if_stale(backend).await?;
        let image = self.state.image();
        let borrower = crate::backend_set::Borrower {
            id: self.lend_token,
            state: &self.state,
            image: &image,
        };
        let slot = self
            .backends
            .ready(&self.ctx, backend, &self.who, &borrower)
            .await?;
        let secs = timeout.as_secs_f64();
        let sql = if slot.conn.is_mariadb() {
            format!("SELECT MASTER_GTID_WAIT('{position}', {secs:.3})")
        } else {
            format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{position}', {secs:.3})")
        };
        let outcome = slot.conn.query(&sql).await?;
        if let Some((code, _, message)) = &outcome.error {
            tracing::warn!(backend, code, %message, "GTID wait failed; reading from the primary");
            return Ok(false);
        }
        let value = outcome
            .rows
            .first()
            .and_then(|r| r.first().cloned().flatten());
        Ok(value.as_deref() == Some("0"))
    }
}
