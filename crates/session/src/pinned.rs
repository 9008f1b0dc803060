//! Server-side session state that cannot move (issue #16): temporary tables, `LOCK TABLES`,
//! named locks, SQL prepared statements and user variables live on one connection to one
//! server. When that server stops being the primary, or the connection is lost (the server
//! restarted), the state is gone; the session's next command gets an error naming what was
//! lost and the connection is closed, as the server closes a killed connection — never a
//! "table doesn't exist" from a server that never saw the table.

use rwproxy_monitor::PrimaryState;

use crate::session::Session;

/// `ER_CONNECTION_KILLED`: clients and pools treat it as "reconnect".
pub(crate) const STATE_LOST: (u16, &[u8; 5]) = (1927, b"70100");

impl Session {
    /// Keeps [`crate::session_state::SessionState::pinned_on`] up to date after a statement
    /// that ran on `backend`.
    pub(crate) fn track_pinned_state(&mut self, backend: &str) {
        let held = self
            .state
            .pins
            .server_side(self.state.user_vars_on_primary)
            .is_some();
        match (&self.state.pinned_on, held) {
            (None, true) => self.state.pinned_on = Some(backend.to_string()),
            (Some(_), false) => {
                self.state.pinned_on = None;
                self.state.pinned_lost = false;
            }
            _ => {}
        }
    }

    /// Why the session's server-side state is lost, if it is.
    pub(crate) fn lost_pinned_state(&self) -> Option<String> {
        let on = self.state.pinned_on.as_deref()?;
        let what = self
            .state
            .pins
            .server_side(self.state.user_vars_on_primary)?;
        if self.state.pinned_lost {
            return Some(format!(
                "Connection was killed: this session's {what} lived on the connection to '{on}', which was lost (the server restarted or closed it); reconnect and create them again"
            ));
        }
        match &self.ctx.monitor().snapshot().primary {
            PrimaryState::One(p) if p != on => Some(format!(
                "Connection was killed: this session's {what} lived on '{on}', which is no longer the primary ('{p}' is); reconnect and create them again"
            )),
            _ => None,
        }
    }
}
