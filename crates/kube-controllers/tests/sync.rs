//! The reconcile passes against a real etcd: what they write, that a second
//! pass writes nothing, that stale objects are removed, that only labels of
//! an endpoint change, and that a concurrent write is not overwritten.

mod etcd;

use std::collections::BTreeMap;
use std::sync::Arc;

use calico_api::{Kind, Resource, ResourceKey};
use calico_datastore::{Client, Store};
use calico_kube_controllers::convert::{self, Pod};
use calico_kube_controllers::sync::{self, Stats};
use etcd::etcd_client;

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn gkey(name: &str) -> ResourceKey {
    ResourceKey {
        kind: Kind::Profile,
        namespace: None,
        name: name.into(),
    }
}

fn wkey() -> ResourceKey {
    ResourceKey {
        kind: Kind::WorkloadEndpoint,
        namespace: Some("prod".into()),
        name: "node1-k8s-web-eth0".into(),
    }
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn profile_labels(c: &Client, name: &str) -> BTreeMap<String, String> {
    match ok(c.get(&gkey(name))) {
        Resource::Profile(p) => p.spec.labels_to_apply,
        _ => panic!("not a profile"),
    }
}

#[test]
fn namespace_profiles_follow_labels_idempotently() {
    let (_etcd, c) = etcd_client();
    // A profile some other tool owns is never touched.
    ok(c.apply(convert::service_account_profile("x", "y", &BTreeMap::new())));
    let desired = |team: &str| {
        vec![
            convert::namespace_profile("a", &labels(&[("team", team)])),
            convert::namespace_profile("b", &BTreeMap::new()),
        ]
    };
    let s = ok(sync::sync_profiles(&c, "kns.", desired("red")));
    assert_eq!(
        s,
        Stats {
            created: 2,
            ..Stats::default()
        }
    );
    assert!(!ok(sync::sync_profiles(&c, "kns.", desired("red"))).wrote());
    let rev_before = ok(c.store().list("/")).1;
    assert!(!ok(sync::sync_profiles(&c, "kns.", desired("red"))).wrote());
    assert_eq!(ok(c.store().list("/")).1, rev_before, "a no-op pass wrote");

    // Label change: labelsToApply follow; namespace b deleted: profile gone.
    let s = ok(sync::sync_profiles(
        &c,
        "kns.",
        vec![convert::namespace_profile(
            "a",
            &labels(&[("team", "blue")]),
        )],
    ));
    assert_eq!(
        s,
        Stats {
            updated: 1,
            deleted: 1,
            ..Stats::default()
        }
    );
    assert_eq!(profile_labels(&c, "kns.a")["pcns.team"], "blue");
    assert!(c.get(&gkey("kns.b")).is_err());
    assert!(c.get(&gkey("ksa.x.y")).is_ok());
}

#[test]
fn network_policies_mirrored_changed_and_removed() {
    let (_etcd, c) = etcd_client();
    let np = |name: &str, port: u16| {
        ok(convert::network_policy(&serde_json::json!({
            "metadata": {"name": name, "namespace": "prod", "uid": "u", "resourceVersion": "7"},
            "spec": {"podSelector": {"matchLabels": {"app": "db"}},
                     "ingress": [{"ports": [{"protocol": "TCP", "port": port}]}],
                     "policyTypes": ["Ingress"]}
        })))
    };
    let s = ok(sync::sync_network_policies(
        &c,
        vec![np("p1", 80), np("p2", 81)],
    ));
    assert_eq!(s.created, 2);
    assert!(
        !ok(sync::sync_network_policies(
            &c,
            vec![np("p1", 80), np("p2", 81)]
        ))
        .wrote()
    );
    let (stored, _) = ok(c.list_k8s_network_policies(Some("prod")));
    assert_eq!(stored.len(), 2);
    let s = ok(sync::sync_network_policies(&c, vec![np("p1", 443)]));
    assert_eq!(
        s,
        Stats {
            updated: 1,
            deleted: 1,
            ..Stats::default()
        }
    );
    let (stored, _) = ok(c.list_k8s_network_policies(None));
    assert_eq!(stored.len(), 1);
    let json = serde_json::to_string(&stored[0].spec).unwrap_or_default();
    assert!(json.contains("443"), "{json}");
}

fn wep(pod: &str, l: BTreeMap<String, String>) -> Resource {
    ok(calico_api::decode_value(serde_json::json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "WorkloadEndpoint",
        "metadata": {"name": format!("node1-k8s-{pod}-eth0"), "namespace": "prod", "labels": l},
        "spec": {"orchestrator": "k8s", "node": "node1", "pod": pod, "endpoint": "eth0",
                 "containerID": "abc", "interfaceName": "cali0123456789a",
                 "ipNetworks": ["10.0.0.1/32"], "profiles": ["kns.prod"]}
    })))
}

#[test]
fn pod_relabel_changes_only_endpoint_labels() {
    let (_etcd, c) = etcd_client();
    let start = labels(&[
        ("app", "web"),
        (convert::LABEL_NAMESPACE, "prod"),
        (convert::LABEL_ORCHESTRATOR, "k8s"),
    ]);
    ok(c.create(wep("web", start.clone())));
    ok(c.create(wep("other", start)));
    let before = ok(c.get(&wkey()));
    let pod = Pod {
        namespace: "prod".into(),
        name: "web".into(),
        labels: labels(&[("app", "web"), ("tier", "front")]),
        service_account: None,
        node: None,
    };
    let s = ok(sync::sync_endpoint_labels(&c, std::slice::from_ref(&pod)));
    assert_eq!(s.updated, 1);
    assert!(!ok(sync::sync_endpoint_labels(&c, &[pod])).wrote());
    let after = ok(c.get(&wkey()));
    let (Resource::WorkloadEndpoint(b), Resource::WorkloadEndpoint(a)) = (&before, &after) else {
        panic!("kind")
    };
    assert_eq!(a.spec, b.spec, "dataplane fields changed");
    assert_eq!(a.metadata.labels["tier"], "front");
    assert_eq!(a.metadata.uid, b.metadata.uid);
}

/// A scheduled pod's change reads its own endpoints by name, not its
/// namespace's: a pod whose name extends it (`web-1`) and a pod elsewhere
/// are left alone.
#[test]
fn a_pod_change_reads_only_its_own_endpoints() {
    let (_etcd, plain) = etcd_client();
    let (counting, c) = Counting::over(&plain);
    let start = labels(&[("app", "web")]);
    for name in ["web", "web-1", "db"] {
        ok(c.create(wep(name, start.clone())));
    }
    let pod = |name: &str, node: Option<&str>| Pod {
        namespace: "prod".into(),
        name: name.into(),
        labels: labels(&[("app", "web"), ("tier", "front")]),
        service_account: None,
        node: node.map(Into::into),
    };
    let s = ok(sync::sync_endpoint_labels(&c, &[pod("web", Some("node1"))]));
    assert_eq!(s.updated, 1);
    let listed = counting
        .prefixes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].ends_with("/workloadendpoints/prod/node1-k8s-web-"),
        "{listed:?}"
    );
    let tier = |pod: &str| {
        let key = ResourceKey {
            kind: Kind::WorkloadEndpoint,
            namespace: Some("prod".into()),
            name: format!("node1-k8s-{pod}-eth0"),
        };
        ok(c.get(&key)).metadata().labels.get("tier").cloned()
    };
    assert_eq!(tier("web").as_deref(), Some("front"));
    assert_eq!(tier("web-1"), None, "another pod's endpoint was relabelled");
    // Not scheduled yet: the namespace is listed instead, same result.
    let s = ok(sync::sync_endpoint_labels(&c, &[pod("db", None)]));
    assert_eq!(s.updated, 1);
    assert!(
        counting.prefixes.lock().unwrap_or_else(|e| e.into_inner())[1]
            .ends_with("/workloadendpoints/prod/")
    );
    assert_eq!(tier("db").as_deref(), Some("front"));
}

#[test]
fn concurrent_writer_is_not_overwritten() {
    let (_etcd, c) = etcd_client();
    ok(sync::sync_profiles(
        &c,
        "kns.",
        vec![convert::namespace_profile("a", &BTreeMap::new())],
    ));
    // Another writer changes the profile after our read: simulate by a pass
    // whose read is stale — update with an old resourceVersion conflicts.
    let mut stale = ok(c.get(&gkey("kns.a")));
    ok(c.apply(convert::namespace_profile("a", &labels(&[("w", "other")]))));
    if let Resource::Profile(p) = &mut stale {
        p.spec
            .labels_to_apply
            .insert("pcns.w".into(), "mine".into());
    }
    assert!(matches!(
        c.update(stale),
        Err(calico_datastore::ClientError::Conflict { .. })
    ));
    assert_eq!(profile_labels(&c, "kns.a")["pcns.w"], "other");
}

/// A store that counts the lists and transactions passing through it.
struct Counting {
    inner: Arc<dyn Store>,
    lists: std::sync::atomic::AtomicUsize,
    txns: std::sync::atomic::AtomicUsize,
    prefixes: std::sync::Mutex<Vec<String>>,
}

impl Counting {
    /// A counting store over `plain`'s, and a client of it.
    fn over(plain: &Client) -> (Arc<Counting>, Client) {
        let counting = Arc::new(Counting {
            inner: plain.store().clone(),
            lists: Default::default(),
            txns: Default::default(),
            prefixes: Default::default(),
        });
        let c = Client::new(counting.clone());
        (counting, c)
    }

    fn counts(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.lists.load(Relaxed), self.txns.load(Relaxed))
    }
}

impl Store for Counting {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn get(
        &self,
        key: &str,
    ) -> Result<Option<calico_datastore::KeyValue>, calico_datastore::StoreError> {
        self.inner.get(key)
    }
    fn list(
        &self,
        prefix: &str,
    ) -> Result<(Vec<calico_datastore::KeyValue>, i64), calico_datastore::StoreError> {
        self.lists
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut p) = self.prefixes.lock() {
            p.push(prefix.to_string());
        }
        self.inner.list(prefix)
    }
    fn txn(
        &self,
        compares: &[calico_datastore::Compare],
        ops: &[calico_datastore::Op],
    ) -> Result<Option<i64>, calico_datastore::StoreError> {
        self.txns.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.txn(compares, ops)
    }
    fn watch(
        &self,
        prefix: &str,
        from: i64,
    ) -> Result<Box<dyn calico_datastore::Watch>, calico_datastore::StoreError> {
        self.inner.watch(prefix, from)
    }
}

fn ns_obj(name: &str, team: &str) -> ((String, String), serde_json::Value) {
    (
        (String::new(), name.to_string()),
        serde_json::json!({"metadata": {"name": name, "labels": {"team": team}}}),
    )
}

/// The profile and policy controllers keep what they wrote: after the
/// start-up resync (one list), one change is one transaction and no list;
/// a write raced by another writer reads that one profile again and wins
/// on the retry; a second resync of the same state writes nothing.
#[test]
fn controllers_cache_the_store_one_write_per_change() {
    use calico_kube_controllers::controllers::{
        PolicyController, ProfileController, ProfileSource,
    };
    use calico_kube_controllers::reflector::Change;
    let (_etcd, plain) = etcd_client();
    let (counting, c) = Counting::over(&plain);
    let mut cache: BTreeMap<_, _> = ["a", "b", "c"]
        .into_iter()
        .map(|n| ns_obj(n, "red"))
        .collect();
    let mut ctl = ProfileController::new(ProfileSource::Namespace);
    let s = ok(ctl.on_change(&c, &cache, &[Change::Resync]));
    assert_eq!(s.created, 3);
    let before = counting.counts();
    let (k, v) = ns_obj("b", "blue");
    cache.insert(k.clone(), v);
    let s = ok(ctl.on_change(&c, &cache, &[Change::Upsert(k)]));
    assert_eq!((s.updated, s.created, s.deleted), (1, 0, 0));
    let after = counting.counts();
    assert_eq!(after.0, before.0, "a change listed the store");
    assert_eq!(after.1, before.1 + 1, "one change, one transaction");
    assert_eq!(profile_labels(&c, "kns.b")["pcns.team"], "blue");
    let k = (String::new(), "c".to_string());
    cache.remove(&k);
    let s = ok(ctl.on_change(&c, &cache, &[Change::Delete(k)]));
    assert_eq!(s.deleted, 1);
    assert_eq!(counting.counts().0, before.0);

    // Another writer changes kns.a behind the controller's back.
    ok(plain.apply(convert::namespace_profile("a", &labels(&[("w", "other")]))));
    let (k, v) = ns_obj("a", "green");
    cache.insert(k.clone(), v);
    let s = ok(ctl.on_change(&c, &cache, &[Change::Upsert(k)]));
    assert_eq!((s.updated, s.conflicts), (1, 0), "{s:?}");
    assert_eq!(profile_labels(&c, "kns.a")["pcns.team"], "green");
    assert!(!profile_labels(&c, "kns.a").contains_key("pcns.w"));

    // A resync (watch loss) of the same state writes nothing.
    let rev = ok(plain.store().list("/")).1;
    assert!(!ok(ctl.on_change(&c, &cache, &[Change::Resync])).wrote());
    assert_eq!(ok(plain.store().list("/")).1, rev, "a no-op resync wrote");

    // The policy controller likewise.
    let np = |port: u16| {
        serde_json::json!({"metadata": {"name": "p", "namespace": "prod"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                     "ingress": [{"ports": [{"protocol": "TCP", "port": port}]}]}})
    };
    let key = ("prod".to_string(), "p".to_string());
    let mut pcache = BTreeMap::from([(key.clone(), np(80))]);
    let mut pol = PolicyController::default();
    assert_eq!(ok(pol.on_change(&c, &pcache, &[Change::Resync])).created, 1);
    let before = counting.counts();
    pcache.insert(key.clone(), np(443));
    assert_eq!(
        ok(pol.on_change(&c, &pcache, &[Change::Upsert(key.clone())])).updated,
        1
    );
    assert!(!ok(pol.on_change(&c, &pcache, &[Change::Upsert(key.clone())])).wrote());
    let after = counting.counts();
    assert_eq!((after.0, after.1), (before.0, before.1 + 1));
    pcache.clear();
    assert_eq!(
        ok(pol.on_change(&c, &pcache, &[Change::Delete(key)])).deleted,
        1
    );
    assert!(ok(plain.list_k8s_network_policies(None)).0.is_empty());
}
