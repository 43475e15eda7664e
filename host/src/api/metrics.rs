//! `/metrics` in Prometheus (OpenMetrics) text: requests and latencies per route, evaluations
//! and step failures. The endpoint needs no token, so it shows how the host runs and nothing of
//! any tenant: no tenant names, no order counts or amounts.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::fmt::Write;

/// Labels of a request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// Route template, e.g. `/v1/orders/{id}`.
    pub route: String,
    /// Status code.
    pub status: u16,
}

/// Labels of a latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method.
    pub method: String,
    /// Route template.
    pub route: String,
}

/// The metrics registry of one server.
pub struct Metrics {
    registry: Registry,
    /// Requests answered.
    pub requests: Family<RequestLabels, Counter>,
    /// Seconds per request.
    pub latency: Family<RouteLabels, Histogram>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Metrics {
    /// An empty registry with the HTTP metrics registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register("greenlight_http_requests", "HTTP requests answered", requests.clone());
        registry.register("greenlight_http_request_duration_seconds", "HTTP request latency", latency.clone());
        Metrics { registry, requests, latency }
    }

    /// Renders everything, appending the gauges read at scrape time.
    pub fn render(
        &self,
        evaluations: u64,
        step_failures: u64,
        writer: crate::store::WriterStats,
        access: &crate::approvals::AccessLog,
    ) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        let body = out.strip_suffix("# EOF\n").unwrap_or(&out).to_string();
        let mut extra = String::new();
        let _ = writeln!(
            extra,
            "# HELP greenlight_evaluations Order evaluations run.\n# TYPE greenlight_evaluations counter"
        );
        let _ = writeln!(extra, "greenlight_evaluations_total {evaluations}");
        let _ = writeln!(
            extra,
            "# HELP greenlight_step_failures Step calls that failed (trap, limit, bad output).\n# TYPE greenlight_step_failures counter"
        );
        let _ = writeln!(extra, "greenlight_step_failures_total {step_failures}");
        // The writer's busy seconds against wall time tell whether it is the bound on writes.
        let _ = writeln!(
            extra,
            "# HELP greenlight_writer_changes Changes the store's writer ran.\n# TYPE greenlight_writer_changes counter\ngreenlight_writer_changes_total {}",
            writer.changes
        );
        let _ = writeln!(
            extra,
            "# HELP greenlight_writer_commits Group commits (one fsync each).\n# TYPE greenlight_writer_commits counter\ngreenlight_writer_commits_total {}",
            writer.commits
        );
        let _ = writeln!(
            extra,
            "# HELP greenlight_writer_busy_seconds Time the writer spent writing and committing.\n# TYPE greenlight_writer_busy_seconds counter\ngreenlight_writer_busy_seconds_total {:.6}",
            writer.busy.as_secs_f64()
        );
        // Counts only: who tried and from where is in the tenant's access attempts, not here.
        let _ = writeln!(
            extra,
            "# HELP greenlight_access_attempts Sign-ins and refused API calls, by channel and outcome.\n# TYPE greenlight_access_attempts counter"
        );
        for (channel, outcome, n) in access.counts() {
            let _ = writeln!(
                extra,
                "greenlight_access_attempts_total{{channel=\"{}\",outcome=\"{}\"}} {n}",
                channel.as_str(),
                outcome.as_str()
            );
        }
        let _ = writeln!(
            extra,
            "# HELP greenlight_access_attempts_unrecorded Attempts counted but not stored (a flood filled the queue).\n# TYPE greenlight_access_attempts_unrecorded counter\ngreenlight_access_attempts_unrecorded_total {}",
            access.dropped()
        );
        format!("{body}{extra}# EOF\n")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
