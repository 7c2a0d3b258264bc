//! The scale bench's scenario (`benches/scale.rs`), small, for correctness:
//! on the local store and on etcd, the agent starts with every endpoint
//! elsewhere in its selector set and every block routed, follows label
//! changes and adds one by one and a burst, and reads a bounded number of
//! datastore bytes per change (the change itself, not the cluster).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod scale_scenario;

use calico_testutil::require_root;
use scale_scenario::{Params, StoreKind};

fn small(store: StoreKind) -> Params {
    Params {
        store,
        endpoints: 600,
        nodes: 12,
        policies: 40,
        netsets: 40,
        changes: 10,
        adds: 10,
        burst: 100,
        local: 3,
    }
}

fn check(store: StoreKind) {
    let p = small(store);
    let r = scale_scenario::run(&p, false);
    // Each change reads about one endpoint's key and value, whatever the
    // cluster holds (600 endpoints here are ~300 KB).
    assert!(
        r.bytes_per_change > 100.0 && r.bytes_per_change < 2_000.0,
        "{r:?}"
    );
    assert!(
        r.bytes_per_add > 100.0 && r.bytes_per_add < 2_000.0,
        "{r:?}"
    );
    assert!(r.rss_kib > 0, "{r:?}");
}

#[test]
fn scale_scenario_on_the_local_store() {
    require_root!();
    check(StoreKind::Local);
}

#[test]
fn scale_scenario_on_etcd() {
    require_root!();
    check(StoreKind::Etcd);
}
