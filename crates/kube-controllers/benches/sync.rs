//! Start-up sync and label-change latency of the `calico-kube-controllers`
//! binary (a child process, configured by a kubeconfig pointing at the fake
//! API server in this process) with a real etcd: N namespaces and M pods
//! listed at start → `kns.` profiles and WorkloadEndpoint labels in sync
//! (time from the spawn, peak RSS of the controller's own process: VmHWM of
//! the child), then label changes at a steady rate → p50/p99 from the API
//! change to the endpoint written (seen through an etcd watch), and how many
//! were never seen. Sizes: KC_NAMESPACES (1000), KC_PODS (10000), KC_RATE
//! (100/s), KC_SECONDS (10).

#[path = "../tests/etcd/mod.rs"]
mod etcd;
#[path = "../tests/fake_api/mod.rs"]
mod fake_api;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calico_api::{Kind, Resource};
use calico_datastore::Client;
use calico_datastore::client::ResourceEvent;
use fake_api::{Ca, FakeApi};
use serde_json::json;

fn env(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// `VmHWM` and `VmRSS` of process `pid`, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn pod(ns: usize, i: usize, ver: usize) -> serde_json::Value {
    json!({"kind": "Pod", "apiVersion": "v1",
           "metadata": {"name": format!("pod{i}"), "namespace": format!("ns{ns}"),
                        "labels": {"app": format!("a{}", i % 50), "ver": ver.to_string()}},
           "spec": {"serviceAccountName": "default", "nodeName": "node1"}})
}

/// What the etcd watches saw.
#[derive(Default)]
struct Seen {
    profiles: usize,
    profiles_done: Option<Instant>,
    relabelled: usize,
    endpoints_done: Option<Instant>,
    /// pod → (label version awaited, when it was changed in the API).
    sent: HashMap<String, (String, Instant)>,
    latencies: Vec<Duration>,
}

fn watch(
    c: &Client,
    kind: Kind,
    from: i64,
    seen: Arc<Mutex<Seen>>,
    n: usize,
    stop: Arc<AtomicBool>,
) {
    let mut w = c
        .watch(kind, None, from)
        .unwrap_or_else(|e| panic!("watch {kind:?}: {e}"));
    while !stop.load(Ordering::Relaxed) {
        let ev = match w.next(Duration::from_millis(200)) {
            Ok(Some(ResourceEvent::Upserted(r))) => r,
            Ok(_) => continue,
            Err(e) => panic!("etcd watch: {e}"),
        };
        let now = Instant::now();
        let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
        match &ev {
            Resource::Profile(_) => {
                s.profiles += 1;
                if s.profiles == n {
                    s.profiles_done = Some(now);
                }
            }
            Resource::WorkloadEndpoint(w) => {
                let ver = w.metadata.labels.get("ver").cloned().unwrap_or_default();
                if ver == "1" {
                    s.relabelled += 1;
                    if s.relabelled == n {
                        s.endpoints_done = Some(now);
                    }
                }
                if let Some((want, t)) = s.sent.get(&w.spec.pod).cloned()
                    && want == ver
                {
                    s.sent.remove(&w.spec.pod);
                    s.latencies.push(now - t);
                }
            }
            _ => {}
        }
    }
}

fn main() {
    let (n_ns, n_pods) = (env("KC_NAMESPACES", 1000), env("KC_PODS", 10000));
    let (rate, secs) = (env("KC_RATE", 100), env("KC_SECONDS", 10));
    let (etcd, c) = etcd::etcd_client();
    let api = FakeApi::start();
    // The endpoints the CNI plugin wrote (labels at ver 0).
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
    eprintln!("setup: {n_pods} endpoints in etcd in {:.1?}", t.elapsed());

    let rev = c
        .store()
        .list("/calico/resources/v3/projectcalico.org/nodes/")
        .unwrap_or_else(|e| panic!("{e}"))
        .1;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let watchers: Vec<_> = [(Kind::Profile, n_ns), (Kind::WorkloadEndpoint, n_pods)]
        .into_iter()
        .map(|(kind, n)| {
            let (c, seen, stop) = (c.clone(), seen.clone(), stop.clone());
            std::thread::spawn(move || watch(&c, kind, rev + 1, seen, n, stop))
        })
        .collect();

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kc = api.write_kubeconfig(&dir.path().join("kubeconfig"), Ca::None, None);
    let t0 = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_calico-kube-controllers"))
        .env("KUBECONFIG", &kc)
        .env("DATASTORE_TYPE", "etcdv3")
        .env("ETCD_ENDPOINTS", etcd.endpoint())
        .env("ENABLED_CONTROLLERS", "namespace,workloadendpoint")
        .env("LOG_LEVEL", "warning")
        .env("HOSTNAME", "bench")
        .spawn()
        .unwrap_or_else(|e| panic!("spawn calico-kube-controllers: {e}"));
    let pid = child.id();
    let wait_done = |f: &dyn Fn(&Seen) -> Option<Instant>| {
        let end = Instant::now() + Duration::from_secs(600);
        loop {
            if let Some(t) = f(&seen.lock().unwrap_or_else(|e| e.into_inner())) {
                return Some(t - t0);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let shown =
        |t: Option<Duration>| t.map_or("never (10 min)".to_string(), |t| format!("{t:.2?}"));
    let t_ns = shown(wait_done(&|s| s.profiles_done));
    let t_pods = shown(wait_done(&|s| s.endpoints_done));
    let (hwm1, rss1) = rss_mib(pid);

    // Steady label changes.
    let total = rate * secs;
    let gap = Duration::from_secs(1) / rate as u32;
    let start = Instant::now();
    for k in 0..total {
        let i = (k * 7919) % n_pods;
        let ver = 2 + k;
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .sent
            .insert(format!("pod{i}"), (ver.to_string(), Instant::now()));
        api.put("/api/v1/pods", pod(i % n_ns, i, ver));
        let due = start + gap * (k as u32 + 1);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let end = Instant::now() + Duration::from_secs(30);
    while !seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .sent
        .is_empty()
        && Instant::now() < end
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (hwm2, _) = rss_mib(pid);
    let _ = child.kill();
    let _ = child.wait();
    stop.store(true, Ordering::Relaxed);
    api.cut();
    for w in watchers {
        let _ = w.join();
    }
    let s = seen.lock().unwrap_or_else(|e| e.into_inner());
    let mut l = s.latencies.clone();
    l.sort();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let lost = s.sent.len();
    let rows: BTreeMap<&str, String> = BTreeMap::from([
        (
            "1 namespaces -> kns. profiles in sync",
            format!("{n_ns} ns, {} profiles, {t_ns} from spawn", s.profiles),
        ),
        (
            "2 pods -> endpoints relabelled",
            format!(
                "{n_pods} pods, {} relabelled, {t_pods} from spawn",
                s.relabelled
            ),
        ),
        (
            "3 controller RSS (child process)",
            format!(
                "after start-up sync: {rss1:.0} MiB (peak {hwm1:.0} MiB); peak at the end: {hwm2:.0} MiB"
            ),
        ),
        (
            "4 label changes",
            format!("{rate}/s for {secs} s: {} seen, {lost} lost", l.len()),
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
