//! Prometheus metrics, as Felix exposes them when
//! `FELIX_PROMETHEUSMETRICSENABLED` is true: Prometheus text format 0.0.4 on
//! `:FELIX_PROMETHEUSMETRICSPORT` (9091) `/metrics`, rendered by the
//! `prometheus` crate (a port of Go's client, so counters keep Felix's names
//! without a `_total` suffix and summaries are summaries).
//!
//! Felix's names, types, help and labels, for what calico-rs measures:
//!
//! - `felix_int_dataplane_apply_time_seconds` (summary, quantiles 0.5, 0.9,
//!   0.99 over the last 10 minutes): each reconcile pass after the first;
//! - `felix_int_dataplane_initial_resync_time_seconds` (gauge): the first;
//! - `felix_int_dataplane_failures` (counter): failed passes;
//! - `felix_active_local_endpoints`, `felix_cluster_num_hosts`,
//!   `felix_cluster_num_workload_endpoints`, `felix_cluster_num_host_endpoints`,
//!   `felix_cluster_num_policies` (Calico's and Kubernetes'),
//!   `felix_cluster_num_profiles`, `felix_cluster_num_tiers` (gauges);
//! - `felix_nft_calls`, `felix_nft_errors` (counters): nft write
//!   transactions (the table `inet calico` and the policy table) and those
//!   that failed;
//! - `felix_ipset_calls` (counter): ipset commands run — none, as with
//!   Felix's nftables dataplane;
//! - `felix_host{host}` (gauge, always 1).
//!
//! calico-rs's own carry the `calico_rs_` prefix:
//! `calico_rs_routes_programmed`, `calico_rs_vxlan_neighbours_programmed`
//! (gauges), `calico_rs_datastore_events_total`,
//! `calico_rs_reconcile_passes_total`, `calico_rs_policy_updates_total`
//! (counters). Nothing is exported that calico-rs does not measure.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Metric, MetricFamily, MetricType, Quantile, Summary as SummaryProto};
use prometheus::{IntCounter, IntGauge, Opts, Registry, TextEncoder};

/// Felix's default metrics port.
pub const DEFAULT_PORT: u16 = 9091;

/// The exposition's content type (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Felix's summary objectives (libcalico-go's `DefObjectives`).
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];
/// How long an observation counts towards the quantiles (Go's `MaxAge`).
const MAX_AGE: Duration = Duration::from_secs(600);
/// At most this many observations are kept for the quantiles.
const MAX_SAMPLES: usize = 1024;

/// The agent's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    apply: Summary,
    initial_apply: prometheus::Gauge,
    first_done: Mutex<bool>,
    /// `felix_int_dataplane_failures`.
    pub errors: IntCounter,
    /// `felix_active_local_endpoints`.
    pub local_endpoints: IntGauge,
    /// `felix_cluster_num_hosts`.
    pub hosts: IntGauge,
    /// `felix_cluster_num_workload_endpoints`.
    pub workload_endpoints: IntGauge,
    /// `felix_cluster_num_host_endpoints`.
    pub host_endpoints: IntGauge,
    /// `felix_cluster_num_policies`.
    pub policies: IntGauge,
    /// `felix_cluster_num_profiles`.
    pub profiles: IntGauge,
    /// `felix_cluster_num_tiers`.
    pub tiers: IntGauge,
    /// `felix_nft_calls`.
    pub nft_calls: IntCounter,
    /// `felix_nft_errors`.
    pub nft_errors: IntCounter,
    /// `felix_ipset_calls` (no ipset command is ever run).
    pub ipset_calls: IntCounter,
    /// `calico_rs_routes_programmed`.
    pub routes: IntGauge,
    /// `calico_rs_vxlan_neighbours_programmed`.
    pub neighbours: IntGauge,
    /// `calico_rs_datastore_events_total`.
    pub events: IntCounter,
    /// `calico_rs_reconcile_passes_total`.
    pub resyncs: IntCounter,
    /// `calico_rs_policy_updates_total`.
    pub policy_updates: IntCounter,
    /// `calico_rs_datastore_read_bytes`: keys and values read from the
    /// datastore since start (lists and watch events).
    pub datastore_bytes: IntGauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new("")
    }
}

impl Metrics {
    /// The metrics of the agent on node `host` (`felix_host`'s label; none
    /// when empty).
    pub fn new(host: &str) -> Metrics {
        let registry = Registry::new();
        let apply = Summary::new(
            "felix_int_dataplane_apply_time_seconds",
            "Time in seconds for each incremental update to the dataplane (after the initial resync).",
        );
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("a constant metric name is valid");
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("a constant metric name is valid");
            let _ = registry.register(Box::new(g.clone()));
            g
        };
        let initial_apply = prometheus::Gauge::new(
            "felix_int_dataplane_initial_resync_time_seconds",
            "Time in seconds that it took to do the initial resync with the dataplane and bring the dataplane into sync for the first time.",
        )
        .expect("a constant metric name is valid");
        let m = Metrics {
            apply: apply.clone(),
            initial_apply: initial_apply.clone(),
            first_done: Mutex::new(false),
            errors: counter(
                "felix_int_dataplane_failures",
                "Number of times dataplane updates failed and will be retried.",
            ),
            local_endpoints: gauge(
                "felix_active_local_endpoints",
                "Number of active endpoints on this host.",
            ),
            hosts: gauge(
                "felix_cluster_num_hosts",
                "Total number of calico hosts in the cluster.",
            ),
            workload_endpoints: gauge(
                "felix_cluster_num_workload_endpoints",
                "Total number of workload endpoints cluster-wide.",
            ),
            host_endpoints: gauge(
                "felix_cluster_num_host_endpoints",
                "Total number of host endpoints cluster-wide.",
            ),
            policies: gauge(
                "felix_cluster_num_policies",
                "Total number of policies cluster-wide.",
            ),
            profiles: gauge(
                "felix_cluster_num_profiles",
                "Total number of profiles cluster-wide.",
            ),
            tiers: gauge(
                "felix_cluster_num_tiers",
                "Total number of tiers cluster-wide.",
            ),
            nft_calls: counter("felix_nft_calls", "Number of nft rule write transactions."),
            nft_errors: counter(
                "felix_nft_errors",
                "Number of nft errors when writing rules.",
            ),
            ipset_calls: counter("felix_ipset_calls", "Number of ipset commands executed."),
            routes: gauge(
                "calico_rs_routes_programmed",
                "Routes calico-node owns in the kernel.",
            ),
            neighbours: gauge(
                "calico_rs_vxlan_neighbours_programmed",
                "VXLAN neighbour entries programmed.",
            ),
            events: counter(
                "calico_rs_datastore_events_total",
                "Datastore changes seen.",
            ),
            resyncs: counter(
                "calico_rs_reconcile_passes_total",
                "Reconcile passes started.",
            ),
            policy_updates: counter(
                "calico_rs_policy_updates_total",
                "Changes applied to the policy table.",
            ),
            datastore_bytes: gauge(
                "calico_rs_datastore_read_bytes",
                "Bytes of keys and values read from the datastore since start.",
            ),
            registry,
        };
        let _ = m.registry.register(Box::new(apply));
        let _ = m.registry.register(Box::new(initial_apply));
        if !host.is_empty()
            && let Ok(g) = IntGauge::with_opts(
                Opts::new(
                    "felix_host",
                    "Configured Felix hostname (as a label), typically used in grouping/aggregating stats; the label defaults to the hostname of the host but can be overridden by configuration. The value of the gauge is always set to 1.",
                )
                .const_label("host", host),
            )
        {
            g.set(1);
            let _ = m.registry.register(Box::new(g));
        }
        m
    }

    /// Records one reconcile pass: the first sets
    /// `felix_int_dataplane_initial_resync_time_seconds`, the others go to
    /// the summary (as Felix, so a slow start does not skew it).
    pub fn observe_apply(&self, d: Duration) {
        let mut first_done = self.first_done.lock().unwrap_or_else(|p| p.into_inner());
        if *first_done {
            self.apply.observe(d.as_secs_f64(), Instant::now());
        } else {
            *first_done = true;
            self.initial_apply.set(d.as_secs_f64());
        }
    }

    /// The cluster and host counts of one pass.
    pub fn set_counts(&self, hosts: usize, workload_endpoints: usize, local_endpoints: usize) {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.hosts.set(n(hosts));
        self.workload_endpoints.set(n(workload_endpoints));
        self.local_endpoints.set(n(local_endpoints));
    }

    /// The cluster's policy resources seen by one pass.
    pub fn set_policy_counts(
        &self,
        tiers: usize,
        policies: usize,
        profiles: usize,
        host_endpoints: usize,
    ) {
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.tiers.set(n(tiers));
        self.policies.set(n(policies));
        self.profiles.set(n(profiles));
        self.host_endpoints.set(n(host_endpoints));
    }

    /// One nft write transaction, and whether it failed.
    pub fn nft_call(&self, failed: bool) {
        self.nft_calls.inc();
        if failed {
            self.nft_errors.inc();
        }
    }

    pub fn inc(c: &IntCounter) {
        c.inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut families = self.registry.gather();
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut o = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&families, &mut o) {
            log::warn!("metrics: cannot render: {e}");
        }
        o
    }
}

/// A summary as Go's client keeps one: count and sum since start, quantiles
/// over the observations of the last [`MAX_AGE`] (at most [`MAX_SAMPLES`]
/// of them, computed exactly rather than estimated).
#[derive(Debug, Clone)]
pub struct Summary {
    desc: Desc,
    state: std::sync::Arc<Mutex<SummaryState>>,
}

#[derive(Debug, Default)]
struct SummaryState {
    count: u64,
    sum: f64,
    recent: VecDeque<(Instant, f64)>,
}

impl Summary {
    /// A summary named `name`, a constant of this module (names are
    /// checked by the unit tests, so the `expect` below cannot fire).
    pub fn new(name: &str, help: &str) -> Summary {
        let desc = Desc::new(name.into(), help.into(), vec![], Default::default())
            .expect("a constant metric name is valid");
        Summary {
            desc,
            state: Default::default(),
        }
    }

    /// Adds an observation made at `now`.
    pub fn observe(&self, v: f64, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.count += 1;
        s.sum += v;
        s.recent.push_back((now, v));
        while s.recent.len() > MAX_SAMPLES {
            s.recent.pop_front();
        }
    }

    /// Count, sum and the [`QUANTILES`] of the observations younger than
    /// [`MAX_AGE`] at `now` (NaN without any, as Go's client).
    pub fn snapshot(&self, now: Instant) -> (u64, f64, [f64; 3]) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while s
            .recent
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > MAX_AGE)
        {
            s.recent.pop_front();
        }
        let mut values: Vec<f64> = s.recent.iter().map(|(_, v)| *v).collect();
        values.sort_by(f64::total_cmp);
        let q = QUANTILES.map(|q| quantile(&values, q));
        (s.count, s.sum, q)
    }
}

/// The `q` quantile of sorted `values` (nearest rank), NaN when empty.
fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

impl Collector for Summary {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let (count, sum, values) = self.snapshot(Instant::now());
        let mut summary = SummaryProto::default();
        summary.set_sample_count(count);
        summary.set_sample_sum(sum);
        summary.set_quantile(
            QUANTILES
                .iter()
                .zip(values)
                .map(|(q, v)| {
                    let mut quantile = Quantile::default();
                    quantile.set_quantile(*q);
                    quantile.set_value(v);
                    quantile
                })
                .collect(),
        );
        let mut metric = Metric::default();
        metric.set_summary(summary);
        let mut family = MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(MetricType::SUMMARY);
        family.set_metric(vec![metric]);
        vec![family]
    }
}

#[cfg(test)]
mod tests;
