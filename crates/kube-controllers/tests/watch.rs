//! The namespace controller end to end: a fake Kubernetes API server (list
//! in pages, watch with bookmarks, 410 after compaction) → the list/watch
//! loop → `kns.` profiles in a real etcd. Label changes follow; a watch cut
//! with history compacted meanwhile is recovered by a relist with no lost
//! and no duplicated change.

mod etcd;
mod fake_api;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calico_api::{Kind, Resource};
use calico_datastore::Client;
use calico_kube_controllers::convert;
use calico_kube_controllers::kube::{self, Collection};
use calico_kube_controllers::sync::{self, Stats};
use etcd::etcd_client;
use fake_api::FakeApi;
use serde_json::json;

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn ns(name: &str, team: &str) -> serde_json::Value {
    json!({"kind": "Namespace", "apiVersion": "v1",
           "metadata": {"name": name, "uid": format!("uid-{name}"), "labels": {"team": team}},
           "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
}

fn profiles(c: &Client) -> BTreeMap<String, BTreeMap<String, String>> {
    ok(c.list(Kind::Profile, None))
        .0
        .into_iter()
        .filter_map(|r| match r {
            Resource::Profile(p) => Some((p.metadata.name, p.spec.labels_to_apply)),
            _ => None,
        })
        .collect()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn namespaces_follow_through_watch_cut_and_410() {
    let (_etcd, c) = etcd_client();
    let api = FakeApi::start();
    let dir = ok(tempfile::tempdir());
    for i in 0..5 {
        api.put("/api/v1/namespaces", ns(&format!("ns{i}"), "red"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(Mutex::new(Stats::default()));
    let worker = {
        let (c, stop, total) = (c.clone(), stop.clone(), total.clone());
        let http = api.client(dir.path());
        std::thread::spawn(move || {
            kube::run(
                &http,
                Collection::Namespaces,
                2,
                &|| stop.load(Ordering::Relaxed),
                &mut |r, _changes| {
                    let desired = r
                        .cache()
                        .values()
                        .map(|o| {
                            let name = o["metadata"]["name"].as_str().unwrap_or("");
                            let labels: BTreeMap<String, String> =
                                serde_json::from_value(o["metadata"]["labels"].clone())
                                    .unwrap_or_default();
                            convert::namespace_profile(name, &labels)
                        })
                        .collect();
                    let s = ok(sync::sync_profiles(&c, "kns.", desired));
                    let mut t = total.lock().unwrap_or_else(|e| e.into_inner());
                    t.created += s.created;
                    t.updated += s.updated;
                    t.deleted += s.deleted;
                    t.conflicts += s.conflicts;
                },
            )
        })
    };
    wait_for("5 profiles", || profiles(&c).len() == 5);
    assert!(api.hits("list") >= 3, "list not paged");

    // A label change follows through the watch.
    api.put("/api/v1/namespaces", ns("ns1", "blue"));
    wait_for("ns1 relabelled", || {
        profiles(&c).get("kns.ns1").and_then(|l| l.get("pcns.team")) == Some(&"blue".to_string())
    });

    // Watch cut; meanwhile ns2 deleted, ns5 added, history compacted: the
    // resume gets 410, the relist recovers both changes.
    api.hold();
    api.cut();
    api.delete("/api/v1/namespaces", "", "ns2");
    api.put("/api/v1/namespaces", ns("ns5", "green"));
    api.compact();
    api.release();
    wait_for("recovery", || {
        let p = profiles(&c);
        p.contains_key("kns.ns5") && !p.contains_key("kns.ns2")
    });
    assert!(api.hits("gone") >= 1, "no 410 served");
    stop.store(true, Ordering::Relaxed);
    api.cut();
    let _ = worker.join();
    let t = *total.lock().unwrap_or_else(|e| e.into_inner());
    // Every change written exactly once: 5 + 1 created, 1 updated, 1 deleted.
    assert_eq!(
        t,
        Stats {
            created: 6,
            updated: 1,
            deleted: 1,
            conflicts: 0
        }
    );
    let p = profiles(&c);
    assert_eq!(p.len(), 5);
    assert_eq!(p["kns.ns5"]["pcns.projectcalico.org/name"], "ns5");
}

#[test]
fn pod_relabel_reaches_endpoint_within_seconds() {
    let (_etcd, c) = etcd_client();
    let wep = ok(calico_api::decode_value(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
        "metadata": {"name": "node1-k8s-web-eth0", "namespace": "prod",
                     "labels": {"app": "web", "projectcalico.org/namespace": "prod",
                                "projectcalico.org/orchestrator": "k8s"}},
        "spec": {"orchestrator": "k8s", "node": "node1", "pod": "web", "endpoint": "eth0",
                 "containerID": "c1", "interfaceName": "cali0123456789a",
                 "ipNetworks": ["10.0.0.1/32"], "profiles": ["kns.prod"]}
    })));
    let before = ok(c.create(wep));
    let api = FakeApi::start();
    let pod = |role: &str| {
        json!({"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web", "role": role}},
               "spec": {"serviceAccountName": "sa1", "nodeName": "node1"}})
    };
    api.put("/api/v1/pods", pod("a"));
    let dir = ok(tempfile::tempdir());
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (c, stop) = (c.clone(), stop.clone());
        let http = api.client(dir.path());
        std::thread::spawn(move || {
            kube::run(
                &http,
                Collection::Pods,
                100,
                &|| stop.load(Ordering::Relaxed),
                &mut |r, ch| {
                    ok(calico_kube_controllers::controllers::endpoint_pass(
                        &c,
                        r.cache(),
                        ch,
                    ));
                },
            )
        })
    };
    let labels = || ok(c.get(&before.key())).metadata().labels.clone();
    wait_for("initial labels", || {
        labels().get("role").map(String::as_str) == Some("a")
    });
    let t = Instant::now();
    api.put("/api/v1/pods", pod("b"));
    wait_for("relabel", || {
        labels().get("role").map(String::as_str) == Some("b")
    });
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    stop.store(true, Ordering::Relaxed);
    api.cut();
    let _ = worker.join();
    let after = ok(c.get(&before.key()));
    let (calico_api::Resource::WorkloadEndpoint(b), calico_api::Resource::WorkloadEndpoint(a)) =
        (&before, &after)
    else {
        panic!("kind")
    };
    assert_eq!(a.spec, b.spec, "dataplane fields changed");
    assert_eq!(a.metadata.labels["projectcalico.org/serviceaccount"], "sa1");
}
