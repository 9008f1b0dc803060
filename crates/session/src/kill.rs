//! `KILL [CONNECTION | QUERY] <id>` and `COM_PROCESS_KILL`, where `<id>` is the connection id
//! rwproxy gave a client (the statement is read by [`rwproxy_sql::kill::parse`]). The statement
//! that session is running is killed on the backend that runs it, through a fresh connection
//! made with the killing client's own credentials (so the server's privilege rules apply
//! unchanged).

use rwproxy_backend::{BackendConn, ConnectParams};
use rwproxy_protocol::reply::codes;

use crate::error::ClientError;
use crate::registry::InFlight;
use crate::session::{Flow, Session};

impl Session {
    pub(crate) async fn kill(&mut self, id: u32, query_only: bool) -> Result<Flow, ClientError> {
        let Some(target) = self.ctx.registry.get(id) else {
            self.send_error(1, codes::NO_SUCH_THREAD, format!("Unknown thread id: {id}"))
                .await?;
            return Ok(Flow::Continue);
        };
        if id == self.id && !query_only {
            self.send_error(1, (1927, b"70100"), "Connection was killed".into())
                .await?;
            return Ok(Flow::Close);
        }
        if !query_only && target.user() != self.who.user {
            self.send_error(
                1,
                (1095, b"HY000"),
                format!("You are not owner of thread {id}"),
            )
            .await?;
            return Ok(Flow::Continue);
        }
        let victims: Vec<std::sync::Arc<InFlight>> = if query_only {
            target.in_flight().into_iter().collect()
        } else {
            target.threads()
        };
        let mut error = None;
        for v in victims {
            // Marked before the kill is sent: the victim no longer lends this connection to
            // another session. Checked again just before sending: a statement that ended (or a
            // connection the victim already lent) is not the victim's any more.
            v.mark_for_kill();
            let still_victims = || {
                if query_only {
                    target
                        .in_flight()
                        .is_some_and(|now| std::sync::Arc::ptr_eq(&now, &v))
                } else {
                    target
                        .threads()
                        .iter()
                        .any(|t| std::sync::Arc::ptr_eq(t, &v))
                }
            };
            if let Err(e) = self.kill_on_backend(&v, query_only, still_victims).await {
                error.get_or_insert(e);
            }
        }
        if !query_only {
            target.events.raise(crate::events::Signals::KILLED);
            // Answer once the victim's connection is closed, so that the victim's next command
            // finds it gone (bounded: a session busy in a statement notices at its end).
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
            while self.ctx.registry.get(id).is_some() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        match error {
            Some((code, state, message)) => self.send_error(1, (code, &state), message).await?,
            None => self.send_ok(1).await?,
        }
        Ok(Flow::Continue)
    }

    async fn kill_on_backend(
        &self,
        v: &InFlight,
        query_only: bool,
        still_victims: impl Fn() -> bool,
    ) -> Result<(), (u16, [u8; 5], String)> {
        let config = self.ctx.config();
        let tls = self.ctx.backend_tls();
        let params = ConnectParams {
            name: &v.backend,
            address: &v.address,
            connect_timeout: config.timeouts.connect,
            login_timeout: config.timeouts.handshake,
            user: &self.who.user,
            secret: &self.who.secret,
            database: None,
            client_capabilities: rwproxy_protocol::CapabilityFlags::empty(),
            collation: self.who.collation,
            max_packet: 1 << 24,
            attributes: &[],
            mariadb_ext: 0,
            tls: tls.as_deref(),
        };
        let mut conn = BackendConn::connect(&params)
            .await
            .map_err(|e| e.client_error())?;
        if !still_victims() {
            // The statement ended meanwhile: nothing left to kill.
            return Ok(());
        }
        let sql = format!(
            "KILL {}{}",
            if query_only { "QUERY " } else { "" },
            v.thread_id
        );
        let outcome = conn.query(&sql).await.map_err(|e| e.client_error())?;
        match outcome.error {
            // The statement finished meanwhile: nothing left to kill.
            Some((1094, _, _)) => Ok(()),
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
