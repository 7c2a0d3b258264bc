//! The reconcile passes against a real etcd: what they write, that a second
//! pass writes nothing, that stale objects are removed, that only labels of
//! an endpoint change, and that a concurrent write is not overwritten.

use std::collections::BTreeMap;
use std::sync::Arc;

use calico_api::{Kind, Resource, ResourceKey};
use calico_datastore::etcd::{EtcdStore, EtcdTls};
use calico_datastore::{Client, Store};
use calico_kube_controllers::convert::{self, Pod};
use calico_kube_controllers::sync::{self, Stats};
use calico_testutil::EtcdServer;

fn client() -> (EtcdServer, Client) {
    let server = EtcdServer::start();
    let store: Arc<dyn Store> = Arc::new(
        EtcdStore::connect(&[server.endpoint()], &EtcdTls::default(), None)
            .unwrap_or_else(|e| panic!("{e}")),
    );
    (server, Client::new(store))
}

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
    let (_etcd, c) = client();
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
    let (_etcd, c) = client();
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
    let (_etcd, c) = client();
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

#[test]
fn concurrent_writer_is_not_overwritten() {
    let (_etcd, c) = client();
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
