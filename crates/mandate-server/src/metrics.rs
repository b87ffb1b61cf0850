//! The daemon's Prometheus counters (served by `routes::ops` at `GET /metrics`).
//!
//! Counters live in memory (per daemon process); the queue depths are read from the
//! database at scrape time. Label values are route templates, rule ids and fixed
//! outcome words: never ids, addresses or amounts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the signing latency histogram's buckets.
const SIGN_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The daemon's counters.
#[derive(Default)]
pub(crate) struct Metrics {
    /// `(method, route template, status)` → requests.
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// `(rule id, outcome)` → policy decisions.
    decisions: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Signing runs per bucket of [`SIGN_BUCKETS`] (not cumulative), plus `+Inf`.
    sign_buckets: [AtomicU64; SIGN_BUCKETS.len() + 1],
    /// Total signing time, microseconds.
    sign_micros: AtomicU64,
    /// Signing runs that failed.
    sign_failures: AtomicU64,
    /// 1 when the last contact with the cosigner worked, 0 when it failed, -1 before any.
    cosigner_up: AtomicI64,
}

impl Metrics {
    /// Fresh counters.
    pub(crate) fn new() -> Metrics {
        Metrics { cosigner_up: AtomicI64::new(-1), ..Metrics::default() }
    }

    pub(crate) fn count_request(&self, method: &str, route: &str, status: u16) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        }
    }

    /// A policy decision on a send: `outcome` is `allow`, `deny` or `held`.
    pub(crate) fn decision(&self, rule_id: &str, outcome: &'static str) {
        if let Ok(mut decisions) = self.decisions.lock() {
            *decisions.entry((rule_id.to_string(), outcome)).or_default() += 1;
        }
    }

    /// A signing run took `elapsed`; `cosigner_answered` says whether the cosigner
    /// took part (a refusal is an answer; an unreachable cosigner is not).
    pub(crate) fn signed(&self, elapsed: Duration, ok: bool, cosigner_answered: bool) {
        let seconds = elapsed.as_secs_f64();
        let bucket = SIGN_BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(SIGN_BUCKETS.len());
        if let Some(counter) = self.sign_buckets.get(bucket) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.sign_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        if !ok {
            self.sign_failures.fetch_add(1, Ordering::Relaxed);
        }
        self.cosigner_up.store(i64::from(cosigner_answered), Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with the queue depths read at scrape time.
    pub(crate) fn render(&self, held: u64, webhook_backlog: u64) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP mandate_http_requests_total HTTP requests by method, route and status.");
        let _ = writeln!(out, "# TYPE mandate_http_requests_total counter");
        if let Ok(requests) = self.requests.lock() {
            for ((method, route, status), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "mandate_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(out, "# HELP mandate_policy_decisions_total Policy decisions on sends by rule and outcome.");
        let _ = writeln!(out, "# TYPE mandate_policy_decisions_total counter");
        if let Ok(decisions) = self.decisions.lock() {
            for ((rule, outcome), n) in decisions.iter() {
                let _ = writeln!(
                    out,
                    "mandate_policy_decisions_total{{rule=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(rule)
                );
            }
        }
        let _ = writeln!(out, "# HELP mandate_signing_seconds Threshold signing runs with the cosigner.");
        let _ = writeln!(out, "# TYPE mandate_signing_seconds histogram");
        let mut cumulative = 0;
        for (index, counter) in self.sign_buckets.iter().enumerate() {
            cumulative += counter.load(Ordering::Relaxed);
            let bound = SIGN_BUCKETS.get(index).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "mandate_signing_seconds_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let seconds = self.sign_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "mandate_signing_seconds_sum {seconds}");
        let _ = writeln!(out, "mandate_signing_seconds_count {cumulative}");
        let gauges = [
            (
                "mandate_signing_failures_total",
                "counter",
                "Signing runs that failed.",
                self.sign_failures.load(Ordering::Relaxed) as i64,
            ),
            (
                "mandate_cosigner_up",
                "gauge",
                "1 if the last contact with the cosigner worked, 0 if not, -1 before any.",
                self.cosigner_up.load(Ordering::Relaxed),
            ),
            (
                "mandate_held_transactions",
                "gauge",
                "Transactions waiting for an approval, a delay or the executor.",
                held as i64,
            ),
            ("mandate_webhook_backlog", "gauge", "Webhook deliveries pending.", webhook_backlog as i64),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

/// A label value as the exposition format wants it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
