//! The heartbeat writer: rewrites one row on the current primary every
//! heartbeat interval so replicas can measure their lag from its age.

use std::sync::Weak;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use crate::heartbeat_table::HeartbeatTable;
use crate::human;
use crate::kept_connection::{ConnError, Credentials, KeptConnection};
use crate::shared::Shared;

/// Writes heartbeats over a kept connection to whichever backend is primary.
struct HeartbeatWriter {
    address: String,
    conn: KeptConnection,
    /// Connection generation on which the table was (re)created.
    prepared: Option<u64>,
}

impl HeartbeatWriter {
    fn new(address: &str) -> Self {
        Self {
            address: address.to_string(),
            conn: KeptConnection::new(address),
            prepared: None,
        }
    }

    async fn beat(
        &mut self,
        credentials: &Credentials,
        table: &HeartbeatTable,
        timeout: Duration,
    ) -> Result<(), String> {
        match tokio::time::timeout(timeout, self.write(credentials, table)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => {
                self.conn.discard();
                Err(err.describe())
            }
            Err(_) => {
                self.conn.drop_connection();
                Err(format!("timeout after {}", human::duration(timeout)))
            }
        }
    }

    async fn write(
        &mut self,
        credentials: &Credentials,
        table: &HeartbeatTable,
    ) -> Result<(), ConnError> {
        let (conn, generation) = self.conn.get(credentials).await?;
        if self.prepared != Some(generation) {
            // Creating may be refused when the objects already exist and the
            // user lacks CREATE: only the write below decides success.
            let mut statements: Vec<String> = table.create_schema_sql().into_iter().collect();
            statements.push(table.create_table_sql());
            for sql in statements {
                match conn.query_drop(&sql).await {
                    Ok(()) => {}
                    Err(mysql_async::Error::Server(e)) => {
                        tracing::debug!(table = %table, error = %e.message, "heartbeat setup refused");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            self.prepared = Some(generation);
        }
        conn.query_drop(table.write_sql()).await?;
        Ok(())
    }
}

/// The writer task: runs until the monitor is dropped or the task aborted.
pub(crate) async fn run(shared: Weak<Shared>) {
    let mut writer: Option<HeartbeatWriter> = None;
    let mut last_error: Option<String> = None;
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let inputs = strong.heartbeat_inputs();
        drop(strong);
        let Some(inputs) = inputs else {
            return;
        };
        let started = Instant::now();
        if let Some(address) = inputs.primary_address {
            if writer.as_ref().map(|w| w.address.as_str()) != Some(address.as_str()) {
                writer = Some(HeartbeatWriter::new(&address));
            }
            if let Some(w) = writer.as_mut() {
                match w
                    .beat(&inputs.credentials, &inputs.table, inputs.timeout)
                    .await
                {
                    Ok(()) => {
                        if last_error.take().is_some() {
                            tracing::info!(address = %address, "heartbeat writes resumed");
                        }
                        if let Some(strong) = shared.upgrade() {
                            strong.heartbeat_written(Instant::now());
                        }
                    }
                    Err(reason) => {
                        if last_error.as_deref() != Some(reason.as_str()) {
                            tracing::warn!(address = %address, table = %inputs.table, %reason, "heartbeat write failed");
                        }
                        last_error = Some(reason);
                    }
                }
            }
        } else {
            writer = None;
        }
        tokio::time::sleep(inputs.interval.saturating_sub(started.elapsed())).await;
    }
}

/// What the writer needs for one beat.
pub(crate) struct HeartbeatInputs {
    pub primary_address: Option<String>,
    pub credentials: Credentials,
    pub table: HeartbeatTable,
    pub interval: Duration,
    pub timeout: Duration,
}
