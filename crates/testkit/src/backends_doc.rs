//! Reading a running proxy's `/backends` document: who is primary (or the Galera writer),
//! which backends serve reads, and waiting until it shows something.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::proxy::ProxyProcess;

/// How often [`wait_backends`] polls (often: the failure tests time what it sees).
const POLL_EVERY: Duration = Duration::from_millis(20);

/// `GET /backends` as JSON.
pub async fn backends(proxy: &ProxyProcess) -> Result<Value, String> {
    let (status, body) = proxy.admin_get("/backends").await?;
    if status != 200 {
        return Err(format!("/backends answered {status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("/backends is not JSON ({e}): {body}"))
}

/// The entry of backend `name` in a `/backends` document.
pub fn backend_of<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc.get("backends")?
        .as_array()?
        .iter()
        .find(|b| b.get("name").and_then(Value::as_str) == Some(name))
}

/// The primary's (Galera: the writer's) name when there is exactly one.
pub fn primary_name(doc: &Value) -> Option<String> {
    let primary = doc.get("primary")?;
    if primary.get("state")?.as_str()? != "one" {
        return None;
    }
    primary.get("name")?.as_str().map(str::to_string)
}

/// Names of the backends that serve reads now (`readable`), sorted.
pub fn readable_names(doc: &Value) -> Vec<String> {
    let mut names: Vec<String> = doc
        .get("backends")
        .and_then(Value::as_array)
        .map(|all| {
            all.iter()
                .filter(|b| b.get("readable").and_then(Value::as_bool) == Some(true))
                .filter_map(|b| b.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Polls `/backends` until `pred` holds; the moment it was seen holding and the document, or
/// the last document (or error) seen when `timeout` ran out.
pub async fn wait_backends(
    proxy: &ProxyProcess,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Result<(Instant, Value), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match backends(proxy).await {
            Ok(doc) if pred(&doc) => return Ok((Instant::now(), doc)),
            Ok(doc) => doc.to_string(),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "/backends did not show {what} within {:.1} s; last: {last}",
                timeout.as_secs_f64()
            ));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}
