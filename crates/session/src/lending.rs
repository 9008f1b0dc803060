//! Connection sharing, the session's side: after each command the session tells
//! [`crate::sharing`] what the statement was, and lends its backend connections to the pool
//! when nothing holds it on them (`pool.enabled`, the account's `pooling`).

use rwproxy_sql::{Classification, Flags};

use crate::relay::RelayOutcome;
use crate::session::Session;
use crate::sharing::{self, HoldReason, StatementFacts};

impl Session {
    /// Updates what holds the session on its connections after a statement (text or
    /// prepared) that ran with `outcome`.
    pub(crate) fn note_holds(
        &mut self,
        class: &Classification<'_>,
        sql: &[u8],
        outcome: &RelayOutcome,
    ) {
        let facts = StatementFacts {
            kind: class.kind,
            flags: class.flags,
            sql,
            failed: outcome.error_code.is_some(),
            warnings: outcome.warnings,
            result_set: outcome.result_set,
            autocommit_off: self.state.autocommit_off(),
        };
        self.state.holds.after_statement(&facts);
    }

    /// A prepared statement that asks about the previous statement cannot have the values put
    /// in (its text is on the server): the session keeps its connections.
    pub(crate) fn note_prepared(&mut self, class: &Classification<'_>) {
        if class.flags.contains(Flags::LAST_STATEMENT_INFO) && self.state.holds.lasting.is_none() {
            self.state.holds.lasting = Some(HoldReason::Diagnostics);
        }
    }

    /// Why the session keeps its connections now, if anything does.
    pub(crate) fn hold_reason(&self) -> Option<HoldReason> {
        sharing::hold(
            &self.state.holds,
            self.state.in_transaction(),
            &self.state.pins,
            self.state.user_vars_on_primary,
            self.prepared.holds_connection(),
        )
    }

    /// After a command: lends the session's connections to the pool when nothing holds it on
    /// them; counts the session under its reason otherwise.
    pub(crate) async fn lend_if_free(&mut self) {
        let mut reason = self.hold_reason();
        // After a reload that turned pooling off, the connections stay with the session (the
        // pool would close them, and the next statement log in again).
        let can_lend = self.sharing && self.ctx.pool.reuse_enabled();
        if reason.is_none() && can_lend && !self.backends.is_empty() {
            // Warnings an earlier statement left stay on the server until a statement that
            // uses a table clears them: a connection that still has them is not lent. (The
            // question changes what the server says of "the previous statement": the
            // session's own values are put in from then on.)
            let probed = self.backends.any_diag_dirty();
            if probed {
                self.state.diagnostics.serial = 0;
            }
            let mut lost = Vec::new();
            if probed
                && !self
                    .backends
                    .diagnostics_cleared(&self.ctx, &mut lost)
                    .await
            {
                reason = Some(HoldReason::Diagnostics);
            }
            for name in &lost {
                self.prepared.forget_backend(name);
            }
        }
        self.set_hold(reason);
        self.count_pinned();
        if reason.is_some() || self.backends.is_empty() || !can_lend {
            if let Some(r) = reason.filter(|_| self.sharing) {
                tracing::trace!(reason = r.label(), "session keeps its backend connections");
            }
            return;
        }
        let image = self.state.image();
        let head = self.state.log_head();
        // Published as no longer held before each connection's KILL mark is looked at (a
        // killer marks first, then checks the session still holds the thread).
        self.handle.replace_threads(std::iter::empty());
        self.backends
            .lend(&self.ctx, &self.who, self.lend_token, &image, head)
            .await;
        // Statement ids on lent connections stay there, in their caches.
        self.prepared.forget_all_backends();
    }

    /// Counts the session's connections as pinned (per backend) while something holds it on
    /// them; nothing changes, and nothing is allocated, while that stays as it was.
    fn count_pinned(&mut self) {
        let held = self.hold.is_some();
        let unchanged = if held {
            self.backends
                .names()
                .eq(self.pinned.backends.iter().map(|b| &**b))
        } else {
            self.pinned.backends.is_empty()
        };
        if unchanged {
            return;
        }
        self.pinned.uncount();
        if held {
            for name in self.backends.names() {
                self.ctx.pinned_counts().add(name);
                self.pinned.backends.push(std::sync::Arc::from(name));
            }
        }
    }

    /// Records the session's reason to keep its connections (for the gauge).
    pub(crate) fn set_hold(&mut self, reason: Option<HoldReason>) {
        // Only sessions that could share count as pinned.
        let reason = reason.filter(|_| self.sharing);
        if reason != self.hold {
            self.ctx.observer.pool_hold_changed(self.hold, reason);
            self.hold = reason;
        }
    }
}

/// The session's connections counted in `rwproxy_backend_pool_pinned_connections`; uncounted
/// when the session ends.
pub(crate) struct PinnedCount {
    ctx: std::sync::Arc<crate::context::ProxyContext>,
    backends: Vec<std::sync::Arc<str>>,
}

impl PinnedCount {
    pub(crate) fn new(ctx: std::sync::Arc<crate::context::ProxyContext>) -> Self {
        PinnedCount {
            ctx,
            backends: Vec::new(),
        }
    }

    fn uncount(&mut self) {
        for name in self.backends.drain(..) {
            self.ctx.pinned_counts().sub(&name);
        }
    }
}

impl Drop for PinnedCount {
    fn drop(&mut self) {
        self.uncount();
    }
}
