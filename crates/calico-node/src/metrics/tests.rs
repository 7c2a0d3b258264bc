use super::*;

/// `# TYPE name kind` of every family in `text`.
fn types(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, k)| (n.to_string(), k.to_string()))
        .collect()
}

#[test]
fn felix_names_types_and_labels() {
    let m = Metrics::new("node-a");
    m.observe_apply(Duration::from_millis(900)); // the initial resync
    m.observe_apply(Duration::from_millis(3));
    m.observe_apply(Duration::from_millis(200));
    Metrics::inc(&m.resyncs);
    Metrics::inc(&m.errors);
    m.routes.set(12);
    m.set_counts(3, 7, 2);
    m.set_policy_counts(2, 5, 4, 1);
    m.nft_call(false);
    m.nft_call(true);
    let t = m.render();
    let types = types(&t);
    for (name, kind) in [
        ("felix_int_dataplane_apply_time_seconds", "summary"),
        ("felix_int_dataplane_initial_resync_time_seconds", "gauge"),
        ("felix_int_dataplane_failures", "counter"),
        ("felix_active_local_endpoints", "gauge"),
        ("felix_cluster_num_hosts", "gauge"),
        ("felix_cluster_num_workload_endpoints", "gauge"),
        ("felix_cluster_num_host_endpoints", "gauge"),
        ("felix_cluster_num_policies", "gauge"),
        ("felix_cluster_num_profiles", "gauge"),
        ("felix_cluster_num_tiers", "gauge"),
        ("felix_nft_calls", "counter"),
        ("felix_nft_errors", "counter"),
        ("felix_ipset_calls", "counter"),
        ("felix_host", "gauge"),
        ("calico_rs_routes_programmed", "gauge"),
        ("calico_rs_vxlan_neighbours_programmed", "gauge"),
        ("calico_rs_datastore_events_total", "counter"),
        ("calico_rs_reconcile_passes_total", "counter"),
        ("calico_rs_policy_updates_total", "counter"),
        ("calico_rs_datastore_read_bytes", "gauge"),
    ] {
        assert!(
            types.contains(&(name.to_string(), kind.to_string())),
            "{name} {kind}: {t}"
        );
    }
    // Nothing else: every exported name is Felix's or calico-rs's own.
    assert_eq!(types.len(), 20, "{t}");
    for line in [
        "felix_cluster_num_tiers 2",
        "felix_cluster_num_policies 5",
        "felix_cluster_num_profiles 4",
        "felix_cluster_num_host_endpoints 1",
        "felix_nft_calls 2",
        "felix_nft_errors 1",
        "felix_ipset_calls 0",
    ] {
        assert!(t.contains(&format!("\n{line}\n")), "{line}: {t}");
    }
    // Counters keep Felix's names (no `_total` added, as Go's client).
    assert!(t.contains("\nfelix_int_dataplane_failures 1\n"), "{t}");
    assert!(
        t.contains("\nfelix_int_dataplane_apply_time_seconds_count 2\n"),
        "{t}"
    );
    assert!(
        t.contains("\nfelix_int_dataplane_apply_time_seconds{quantile=\"0.5\"} 0.003\n"),
        "{t}"
    );
    assert!(
        t.contains("\nfelix_int_dataplane_apply_time_seconds{quantile=\"0.99\"} 0.2\n"),
        "{t}"
    );
    assert!(
        t.contains("\nfelix_int_dataplane_initial_resync_time_seconds 0.9\n"),
        "{t}"
    );
    assert!(t.contains("\nfelix_host{host=\"node-a\"} 1\n"), "{t}");
    assert!(t.contains("\nfelix_cluster_num_hosts 3\n"), "{t}");
    assert!(
        t.contains("\nfelix_cluster_num_workload_endpoints 7\n"),
        "{t}"
    );
    assert!(t.contains("\nfelix_active_local_endpoints 2\n"), "{t}");
    assert!(t.contains("\ncalico_rs_routes_programmed 12\n"), "{t}");
    assert!(t.contains("\ncalico_rs_reconcile_passes_total 1\n"), "{t}");
    assert!(
        t.contains("# HELP felix_int_dataplane_failures Number of times dataplane updates failed and will be retried.\n"),
        "{t}"
    );
}

#[test]
fn an_empty_summary_has_no_quantiles_yet() {
    let t = Metrics::default().render();
    assert!(
        t.contains("felix_int_dataplane_apply_time_seconds{quantile=\"0.9\"} NaN"),
        "{t}"
    );
    assert!(
        t.contains("\nfelix_int_dataplane_apply_time_seconds_count 0\n"),
        "{t}"
    );
    assert!(!t.contains("felix_host"), "{t}");
}

#[test]
fn quantiles_cover_the_last_ten_minutes_only() {
    let s = Summary::new("x_seconds", "x");
    let t0 = Instant::now();
    s.observe(5.0, t0);
    let later = t0 + MAX_AGE + Duration::from_secs(1);
    s.observe(1.0, later);
    s.observe(2.0, later);
    let (count, sum, q) = s.snapshot(later);
    assert_eq!((count, sum), (3, 8.0));
    assert_eq!(q, [1.0, 2.0, 2.0]);
    let (_, _, q) = s.snapshot(later + MAX_AGE + Duration::from_secs(1));
    assert!(q.iter().all(|v| v.is_nan()));
}

#[test]
fn quantiles_keep_a_bounded_window() {
    let s = Summary::new("y_seconds", "y");
    let now = Instant::now();
    for i in 0..(MAX_SAMPLES * 3) {
        s.observe(i as f64, now);
    }
    let (count, _, q) = s.snapshot(now);
    assert_eq!(count, (MAX_SAMPLES * 3) as u64);
    // Only the newest MAX_SAMPLES remain.
    assert!(q[0] >= (MAX_SAMPLES * 2) as f64, "{q:?}");
    assert_eq!(
        s.state.lock().map(|g| g.recent.len()).unwrap_or(0),
        MAX_SAMPLES
    );
}

#[test]
fn nearest_rank() {
    assert!(quantile(&[], 0.5).is_nan());
    assert_eq!(quantile(&[1.0], 0.99), 1.0);
    let v: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(quantile(&v, 0.5), 50.0);
    assert_eq!(quantile(&v, 0.9), 90.0);
    assert_eq!(quantile(&v, 0.99), 99.0);
}
