//! Request counters and latency histograms per interaction, in Prometheus text format.
//! Fixed arrays of atomics: recording costs a few relaxed increments, no lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::interaction::InteractionKind;

const BUCKETS_SECONDS: [f64; 12] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const KINDS: usize = InteractionKind::ALL.len();

pub struct Metrics {
    requests: [[AtomicU64; 5]; KINDS],
    buckets: [[AtomicU64; BUCKETS_SECONDS.len()]; KINDS],
    sum_micros: [AtomicU64; KINDS],
    count: [AtomicU64; KINDS],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            buckets: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            sum_micros: std::array::from_fn(|_| AtomicU64::new(0)),
            count: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

fn index(kind: InteractionKind) -> usize {
    InteractionKind::ALL.iter().position(|k| *k == kind).unwrap_or(KINDS - 1)
}

impl Metrics {
    pub fn record(&self, kind: InteractionKind, status: u16, elapsed: Duration) {
        let k = index(kind);
        let class = ((status / 100) as usize).clamp(1, 5) - 1;
        self.requests[k][class].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS_SECONDS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[k][i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros[k].fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        self.count[k].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP helse_http_requests_total FHIR requests by interaction and status class.\n");
        out.push_str("# TYPE helse_http_requests_total counter\n");
        for (k, kind) in InteractionKind::ALL.iter().enumerate() {
            for (c, class) in STATUS_CLASSES.iter().enumerate() {
                let n = self.requests[k][c].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "helse_http_requests_total{{interaction=\"{}\",status=\"{class}\"}} {n}",
                        kind.code()
                    );
                }
            }
        }
        out.push_str("# HELP helse_http_request_duration_seconds FHIR request latency by interaction.\n");
        out.push_str("# TYPE helse_http_request_duration_seconds histogram\n");
        for (k, kind) in InteractionKind::ALL.iter().enumerate() {
            let count = self.count[k].load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let label = kind.code();
            for (i, bound) in BUCKETS_SECONDS.iter().enumerate() {
                let n = self.buckets[k][i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "helse_http_request_duration_seconds_bucket{{interaction=\"{label}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "helse_http_request_duration_seconds_bucket{{interaction=\"{label}\",le=\"+Inf\"}} {count}"
            );
            let sum = self.sum_micros[k].load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "helse_http_request_duration_seconds_sum{{interaction=\"{label}\"}} {sum}");
            let _ =
                writeln!(out, "helse_http_request_duration_seconds_count{{interaction=\"{label}\"}} {count}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_counts_and_buckets() {
        let m = Metrics::default();
        m.record(InteractionKind::Read, 200, Duration::from_micros(700));
        m.record(InteractionKind::Read, 404, Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("helse_http_requests_total{interaction=\"read\",status=\"2xx\"} 1"));
        assert!(text.contains("helse_http_requests_total{interaction=\"read\",status=\"4xx\"} 1"));
        assert!(
            text.contains("helse_http_request_duration_seconds_bucket{interaction=\"read\",le=\"0.001\"} 1")
        );
        assert!(
            text.contains("helse_http_request_duration_seconds_bucket{interaction=\"read\",le=\"0.005\"} 2")
        );
        assert!(text.contains("helse_http_request_duration_seconds_count{interaction=\"read\"} 2"));
    }
}
