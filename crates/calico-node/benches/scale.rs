//! calico-node at cluster scale: `sudo cargo bench -p calico-node --bench
//! scale` (root: namespaces; etcd installed). The scenario is in
//! `tests/scale_scenario` (which `tests/scale.rs` runs small in CI).
//!
//! For each store (local, etcd), each number of other nodes (100, 1,000)
//! and each number of endpoints (1,000, 10,000, 100,000), with 1,000
//! policies and 1,000 network sets: start-up to ready against loading the
//! same final state by hand (`nft -f`, `ip -batch`, `bridge -batch`), peak
//! RSS, agent CPU per label change and per add of an endpoint elsewhere,
//! the latency of an add to the kernel (p50, p99), a burst of 1,000 adds
//! to the kernel, and datastore bytes read per change. Then each goal
//! with the figure reached.
//!
//! Narrow a run with `SCALE_STORES=local`, `SCALE_NODES=100`,
//! `SCALE_ENDPOINTS=1000,100000`.

#![allow(clippy::unwrap_used)]

#[path = "../tests/scale_scenario/mod.rs"]
mod scenario;

use std::time::Duration;

use scenario::{Params, Results, StoreKind};

fn list<T: std::str::FromStr>(var: &str, default: &str) -> Vec<T> {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    if !scenario::runnable() {
        eprintln!(
            "skipping: needs root, nft and calico-node (cargo build --release -p calico-node)"
        );
        return;
    }
    let stores: Vec<StoreKind> = std::env::var("SCALE_STORES")
        .unwrap_or_else(|_| "local,etcd".into())
        .split(',')
        .filter_map(|s| match s.trim() {
            "local" => Some(StoreKind::Local),
            "etcd" => Some(StoreKind::Etcd),
            _ => None,
        })
        .collect();
    let nodes: Vec<usize> = list("SCALE_NODES", "100,1000");
    let sizes: Vec<usize> = list("SCALE_ENDPOINTS", "1000,10000,100000");
    let mut rows: Vec<(StoreKind, usize, usize, Results)> = Vec::new();
    println!(
        "{:<6} {:>5} {:>7} | {:>9} {:>9} {:>5} | {:>7} | {:>8} {:>8} | {:>7} {:>7} | {:>8} | {:>9} {:>9}",
        "store",
        "nodes",
        "endpts",
        "start ms",
        "ref ms",
        "ratio",
        "RSS MiB",
        "cpu/chg",
        "cpu/add",
        "add p50",
        "add p99",
        "burst ms",
        "B/change",
        "B/add"
    );
    for &store in &stores {
        for &n in &nodes {
            for &e in &sizes {
                let p = Params {
                    store,
                    endpoints: e,
                    nodes: n,
                    policies: 1000,
                    netsets: 1000,
                    changes: 20,
                    adds: 20,
                    burst: 1000,
                    local: 10,
                };
                let r = scenario::run(&p, true);
                println!(
                    "{:<6} {:>5} {:>7} | {:>9.0} {:>9.0} {:>5.2} | {:>7.1} | {:>6.3}ms {:>6.3}ms | {:>5.1}ms {:>5.1}ms | {:>8.0} | {:>9.0} {:>9.0}",
                    format!("{store:?}").to_lowercase(),
                    n,
                    e,
                    ms(r.startup),
                    ms(r.reference),
                    r.startup.as_secs_f64() / r.reference.as_secs_f64(),
                    r.rss_kib as f64 / 1024.0,
                    ms(r.cpu_per_change),
                    ms(r.cpu_per_add),
                    ms(r.add_p50),
                    ms(r.add_p99),
                    ms(r.burst),
                    r.bytes_per_change,
                    r.bytes_per_add
                );
                rows.push((store, n, e, r));
            }
        }
    }
    println!();
    let (Some(&small), Some(&big)) = (sizes.iter().min(), sizes.iter().max()) else {
        return;
    };
    for &store in &stores {
        for &n in &nodes {
            let get = |e: usize| {
                rows.iter()
                    .find(|r| r.0 == store && r.1 == n && r.2 == e)
                    .map(|r| &r.3)
            };
            let (Some(a), Some(b)) = (get(small), get(big)) else {
                continue;
            };
            let s = format!("{store:?}").to_lowercase();
            println!("{s}, {n} nodes, {big} vs {small} endpoints:");
            println!(
                "  CPU per label change {:.3} ms vs {:.3} ms: ratio {:.2} (goal <= 1.5, and < 1 ms)",
                ms(b.cpu_per_change),
                ms(a.cpu_per_change),
                b.cpu_per_change.as_secs_f64() / a.cpu_per_change.as_secs_f64()
            );
            println!(
                "  CPU per add {:.3} ms vs {:.3} ms: ratio {:.2} (goal <= 1.5, and < 1 ms)",
                ms(b.cpu_per_add),
                ms(a.cpu_per_add),
                b.cpu_per_add.as_secs_f64() / a.cpu_per_add.as_secs_f64()
            );
            println!(
                "  add to kernel p99 {:.1} ms (goal <= 100 ms)",
                ms(b.add_p99)
            );
            println!(
                "  burst of 1,000 adds to kernel {:.0} ms (goal <= 2000 ms)",
                ms(b.burst)
            );
            println!(
                "  start-up {:.0} ms vs nft -f + ip -batch {:.0} ms: ratio {:.2} (goal <= 1.5)",
                ms(b.startup),
                ms(b.reference),
                b.startup.as_secs_f64() / b.reference.as_secs_f64()
            );
            println!(
                "  peak RSS {:.1} MiB (goal <= 256 MiB)",
                b.rss_kib as f64 / 1024.0
            );
            println!(
                "  datastore bytes per label change {:.0} vs {:.0}, per add {:.0} vs {:.0} (goal: constant)",
                b.bytes_per_change, a.bytes_per_change, b.bytes_per_add, a.bytes_per_add
            );
        }
    }
}
