//! The Prometheus export of per-query statistics: only the top `stats.export_top` digests by
//! total time, so the number of series stays bounded. Each series carries the digest id, the
//! normalised text (cut to 120 characters), user, schema and destination role. The families are
//! refilled at every scrape from [`crate::DigestStore::top`].

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry, Unit};

use crate::digests::DigestView;
use crate::labels::DestRole;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DigestLabels {
    digest: String,
    text: String,
    user: String,
    schema: String,
    role: DestRole,
}

#[derive(Debug)]
pub(crate) struct DigestMetrics {
    calls: Family<DigestLabels, Counter>,
    errors: Family<DigestLabels, Counter>,
    rows: Family<DigestLabels, Counter>,
    seconds: Family<DigestLabels, Counter<f64, AtomicU64>>,
}

impl DigestMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = DigestMetrics {
            calls: Family::default(),
            errors: Family::default(),
            rows: Family::default(),
            seconds: Family::default(),
        };
        registry.register(
            "query_digest_calls",
            "Statements of the top digests (stats.export_top by total time): calls",
            m.calls.clone(),
        );
        registry.register(
            "query_digest_errors",
            "Statements of the top digests that ended with an error",
            m.errors.clone(),
        );
        registry.register(
            "query_digest_rows",
            "Rows sent for the top digests",
            m.rows.clone(),
        );
        registry.register_with_unit(
            "query_digest",
            "Time spent in the top digests' statements",
            Unit::Seconds,
            m.seconds.clone(),
        );
        m
    }

    /// Replaces every series with `views`.
    pub(crate) fn set(&self, views: &[DigestView]) {
        self.calls.clear();
        self.errors.clear();
        self.rows.clear();
        self.seconds.clear();
        for v in views {
            let labels = DigestLabels {
                digest: v.digest.clone(),
                text: v.text.clone(),
                user: v.user.clone(),
                schema: v.schema.clone(),
                role: v.role,
            };
            self.calls.get_or_create(&labels).inc_by(v.calls);
            self.errors.get_or_create(&labels).inc_by(v.errors);
            self.rows.get_or_create(&labels).inc_by(v.rows);
            self.seconds.get_or_create(&labels).inc_by(v.seconds);
        }
    }
}
