//! Prometheus metrics, as Felix exposes them when
//! `FELIX_PROMETHEUSMETRICSENABLED` is true: text format on
//! `:FELIX_PROMETHEUSMETRICSPORT` (9091) `/metrics`.
//!
//! - `felix_int_dataplane_apply_time_seconds` (histogram): one reconcile pass;
//! - `felix_routes_programmed`, `felix_vxlan_neighbours_programmed` (gauges);
//! - `felix_datastore_events_total`, `felix_resyncs_total`,
//!   `felix_policy_updates_total`, `felix_dataplane_errors_total` (counters).

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Felix's default metrics port.
pub const DEFAULT_PORT: u16 = 9091;

const BUCKETS: [f64; 9] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0];

/// The agent's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    apply_counts: Mutex<([u64; BUCKETS.len()], u64, f64)>,
    pub routes: AtomicU64,
    pub neighbours: AtomicU64,
    pub events: AtomicU64,
    pub resyncs: AtomicU64,
    pub policy_updates: AtomicU64,
    pub errors: AtomicU64,
}

impl Metrics {
    /// Records one reconcile pass.
    pub fn observe_apply(&self, d: Duration) {
        let s = d.as_secs_f64();
        let mut g = self.apply_counts.lock().unwrap_or_else(|p| p.into_inner());
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                g.0[i] += 1;
            }
        }
        g.1 += 1;
        g.2 += s;
    }

    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let g = self.apply_counts.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            o,
            "# HELP felix_int_dataplane_apply_time_seconds Time to reconcile the dataplane once."
        );
        let _ = writeln!(o, "# TYPE felix_int_dataplane_apply_time_seconds histogram");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "felix_int_dataplane_apply_time_seconds_bucket{{le=\"{b}\"}} {}",
                g.0[i]
            );
        }
        let _ = writeln!(
            o,
            "felix_int_dataplane_apply_time_seconds_bucket{{le=\"+Inf\"}} {}",
            g.1
        );
        let _ = writeln!(o, "felix_int_dataplane_apply_time_seconds_sum {}", g.2);
        let _ = writeln!(o, "felix_int_dataplane_apply_time_seconds_count {}", g.1);
        let gauge = |o: &mut String, name: &str, help: &str, v: &AtomicU64, kind: &str| {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {kind}");
            let _ = writeln!(o, "{name} {}", v.load(Ordering::Relaxed));
        };
        gauge(
            &mut o,
            "felix_routes_programmed",
            "Routes calico-node owns in the kernel.",
            &self.routes,
            "gauge",
        );
        gauge(
            &mut o,
            "felix_vxlan_neighbours_programmed",
            "VXLAN neighbour entries programmed.",
            &self.neighbours,
            "gauge",
        );
        gauge(
            &mut o,
            "felix_datastore_events_total",
            "Datastore changes seen.",
            &self.events,
            "counter",
        );
        gauge(
            &mut o,
            "felix_resyncs_total",
            "Full reconcile passes.",
            &self.resyncs,
            "counter",
        );
        gauge(
            &mut o,
            "felix_policy_updates_total",
            "Changes applied to the policy table.",
            &self.policy_updates,
            "counter",
        );
        gauge(
            &mut o,
            "felix_dataplane_errors_total",
            "Failed reconcile passes.",
            &self.errors,
            "counter",
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition() {
        let m = Metrics::default();
        m.observe_apply(Duration::from_millis(3));
        m.observe_apply(Duration::from_millis(200));
        Metrics::inc(&m.resyncs);
        m.routes.store(12, Ordering::Relaxed);
        let t = m.render();
        assert!(
            t.contains("felix_int_dataplane_apply_time_seconds_bucket{le=\"0.005\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("felix_int_dataplane_apply_time_seconds_bucket{le=\"0.5\"} 2"),
            "{t}"
        );
        assert!(
            t.contains("felix_int_dataplane_apply_time_seconds_count 2"),
            "{t}"
        );
        assert!(t.contains("felix_routes_programmed 12"), "{t}");
        assert!(t.contains("felix_resyncs_total 1"), "{t}");
    }
}
