//! Start-up sync and label-change latency against the fake API server and a
//! real etcd: N namespaces and M pods listed at start → `kns.` profiles and
//! WorkloadEndpoint labels in sync (time, RSS of this process, which also
//! holds the fake server); then label changes at a steady rate → p50/p99
//! from the API change to the endpoint written. Sizes: KC_NAMESPACES
//! (1000), KC_PODS (10000), KC_RATE (100/s), KC_SECONDS (10).

#[path = "../tests/fake_api/mod.rs"]
mod fake_api;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calico_api::Kind;
use calico_datastore::etcd::{EtcdStore, EtcdTls};
use calico_datastore::{Client, Store};
use calico_kube_controllers::controllers;
use calico_kube_controllers::kube::{self, HttpApi};
use calico_kube_controllers::reflector::Change;
use calico_kube_controllers::sync;
use calico_testutil::EtcdServer;
use fake_api::FakeApi;
use serde_json::json;

fn env(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn pod(ns: usize, i: usize, ver: usize) -> serde_json::Value {
    json!({"kind": "Pod", "apiVersion": "v1",
           "metadata": {"name": format!("pod{i}"), "namespace": format!("ns{ns}"),
                        "labels": {"app": format!("a{}", i % 50), "ver": ver.to_string()}},
           "spec": {"serviceAccountName": "default", "nodeName": "node1"}})
}

fn main() {
    let (n_ns, n_pods) = (env("KC_NAMESPACES", 1000), env("KC_PODS", 10000));
    let (rate, secs) = (env("KC_RATE", 100), env("KC_SECONDS", 10));
    let etcd = EtcdServer::start();
    let store: Arc<dyn Store> = Arc::new(
        EtcdStore::connect(&[etcd.endpoint()], &EtcdTls::default(), None)
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let c = Client::new(store);
    let api = FakeApi::start();
    // The endpoints the CNI plugin wrote (labels at ver 0), in batches.
    let t = Instant::now();
    for i in 0..n_pods {
        let ns = i % n_ns;
        let w = calico_api::decode_value(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
            "metadata": {"name": format!("node1-k8s-pod{i}-eth0"), "namespace": format!("ns{ns}"),
                         "labels": {"app": format!("a{}", i % 50), "ver": "0",
                                    "projectcalico.org/namespace": format!("ns{ns}"),
                                    "projectcalico.org/orchestrator": "k8s",
                                    "projectcalico.org/serviceaccount": "default"}},
            "spec": {"orchestrator": "k8s", "node": "node1", "pod": format!("pod{i}"),
                     "endpoint": "eth0", "containerID": format!("c{i}"),
                     "interfaceName": format!("cali{i:011}"),
                     "ipNetworks": [format!("10.{}.{}.{}/32", i >> 16 & 255, i >> 8 & 255, i & 255)],
                     "profiles": [format!("kns.ns{ns}")]}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        c.create(w).unwrap_or_else(|e| panic!("{e}"));
    }
    for ns in 0..n_ns {
        api.put(
            "/api/v1/namespaces",
            json!({"metadata": {"name": format!("ns{ns}"), "labels": {"team": "t"}}}),
        );
    }
    // Pods listed at start carry ver 1: every endpoint is relabelled once.
    for i in 0..n_pods {
        api.put("/api/v1/pods", pod(i % n_ns, i, 1));
    }
    eprintln!("setup: {} endpoints in etcd in {:.1?}", n_pods, t.elapsed());

    let stop = Arc::new(AtomicBool::new(false));
    let rss0 = rss_mib();
    let t0 = Instant::now();
    let ns_done = Arc::new(Mutex::new(None));
    let pods_done = Arc::new(Mutex::new(None));
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let lat: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let http = HttpApi {
        addr: api.addr.clone(),
    };
    {
        let (c, stop, done, http) = (c.clone(), stop.clone(), ns_done.clone(), http.clone());
        std::thread::spawn(move || {
            kube::run(
                &http,
                "/api/v1/namespaces",
                500,
                &|| stop.load(Ordering::Relaxed),
                &mut |r, _| {
                    let d = controllers::namespace_profiles(r.cache());
                    let _ = sync::sync_profiles(&c, "kns.", d);
                    done.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(t0.elapsed());
                },
            )
        });
    }
    {
        let (c, stop, done) = (c.clone(), stop.clone(), pods_done.clone());
        let (sent, lat) = (sent.clone(), lat.clone());
        std::thread::spawn(move || {
            kube::run(
                &http,
                "/api/v1/pods",
                500,
                &|| stop.load(Ordering::Relaxed),
                &mut |r, ch| {
                    let _ = controllers::endpoint_pass(&c, r.cache(), ch);
                    done.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(t0.elapsed());
                    let now = Instant::now();
                    let mut s = sent.lock().unwrap_or_else(|e| e.into_inner());
                    for x in ch {
                        if let Change::Upsert((_, name)) = x
                            && let Some(t) = s.remove(name)
                        {
                            lat.lock().unwrap_or_else(|e| e.into_inner()).push(now - t);
                        }
                    }
                },
            )
        });
    }
    let wait = |m: &Arc<Mutex<Option<Duration>>>| loop {
        if let Some(d) = *m.lock().unwrap_or_else(|e| e.into_inner()) {
            return d;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let t_ns = wait(&ns_done);
    let t_pods = wait(&pods_done);
    let rss1 = rss_mib();
    let profiles = c.list(Kind::Profile, None).map(|l| l.0.len()).unwrap_or(0);
    let relabelled = c
        .list(Kind::WorkloadEndpoint, None)
        .map(|l| {
            l.0.iter()
                .filter(|w| w.metadata().labels.get("ver").map(String::as_str) == Some("1"))
                .count()
        })
        .unwrap_or(0);

    // Steady label changes.
    let total = rate * secs;
    let gap = Duration::from_secs(1) / rate as u32;
    let start = Instant::now();
    for k in 0..total {
        let i = (k * 7919) % n_pods;
        sent.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(format!("pod{i}"), Instant::now());
        api.put("/api/v1/pods", pod(i % n_ns, i, 2 + k));
        let due = start + gap * (k as u32 + 1);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let end = Instant::now() + Duration::from_secs(30);
    while !sent.lock().unwrap_or_else(|e| e.into_inner()).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    api.cut();
    let mut l = lat.lock().unwrap_or_else(|e| e.into_inner()).clone();
    l.sort();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let lost = sent.lock().unwrap_or_else(|e| e.into_inner()).len();
    let rows: BTreeMap<&str, String> = BTreeMap::from([
        (
            "1 namespaces -> kns. profiles in sync",
            format!("{n_ns} ns, {profiles} profiles, {t_ns:.2?}"),
        ),
        (
            "2 pods -> endpoints relabelled",
            format!("{n_pods} pods, {relabelled} relabelled, {t_pods:.2?}"),
        ),
        (
            "3 RSS (process, incl. fake API)",
            format!("{rss0:.0} MiB before, {rss1:.0} MiB after sync"),
        ),
        (
            "4 label changes",
            format!("{rate}/s for {secs} s: {} done, {lost} not seen", l.len()),
        ),
        (
            "5 latency API -> endpoint",
            format!(
                "p50 {:.1?}, p99 {:.1?}, max {:.1?}",
                pct(0.5),
                pct(0.99),
                pct(1.0)
            ),
        ),
    ]);
    println!("| measure | result |\n| --- | --- |");
    for (k, v) in rows {
        println!("| {} | {v} |", &k[2..]);
    }
}
