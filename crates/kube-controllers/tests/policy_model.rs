//! What the controllers write is what calico-policy enforces: a Kubernetes
//! NetworkPolicy admitting only namespaces labelled `team=blue` (a
//! `namespaceSelector`), mirrored into a real etcd, read back as
//! calico-node reads it, and decided by calico-policy's oracle. The client
//! namespace's label change (→ `kns.` profile `labelsToApply`) opens the
//! path; deleting the policy lifts it.

mod etcd;

use std::collections::BTreeMap;
use std::net::IpAddr;

use calico_api::{Kind, Resource};
use calico_datastore::Client;
use calico_kube_controllers::{convert, sync};
use calico_policy::model::EndpointId;
use calico_policy::{Packet, Peer, PolicyInput, evaluate};
use etcd::etcd_client;
use serde_json::json;

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn wep(ns: &str, pod: &str, ip: &str) -> Resource {
    ok(calico_api::decode_value(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
        "metadata": {"name": format!("node1-k8s-{pod}-eth0"), "namespace": ns,
                     "labels": {"app": pod, "projectcalico.org/namespace": ns,
                                "projectcalico.org/orchestrator": "k8s"}},
        "spec": {"orchestrator": "k8s", "node": "node1", "pod": pod, "endpoint": "eth0",
                 "containerID": pod, "interfaceName": format!("cali{pod:0>11}"),
                 "ipNetworks": [format!("{ip}/32")], "profiles": [format!("kns.{ns}")]}
    })))
}

/// The policy input as calico-node reads it from the store.
fn input(c: &Client) -> PolicyInput {
    let mut i = PolicyInput::default();
    for kind in [Kind::Profile, Kind::WorkloadEndpoint] {
        for r in ok(c.list(kind, None)).0 {
            i.add_resource(r);
        }
    }
    i.kubernetes_network_policies = ok(c.list_k8s_network_policies(None)).0;
    i
}

fn allowed(c: &Client) -> bool {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap_or_else(|e| panic!("{e}"));
    let p = Packet {
        src: ip("10.0.0.1"),
        dst: ip("10.0.0.2"),
        protocol: 6,
        src_port: 40000,
        dst_port: 80,
        icmp_type: 0,
        icmp_code: 0,
        from: Peer::Workload(EndpointId::workload("web", "node1-k8s-client-eth0")),
        to: Peer::Workload(EndpointId::workload("db", "node1-k8s-server-eth0")),
    };
    evaluate(&input(c), &p).allowed
}

#[test]
fn namespace_selector_follows_namespace_labels() {
    let (_etcd, c) = etcd_client();
    ok(c.create(wep("web", "client", "10.0.0.1")));
    ok(c.create(wep("db", "server", "10.0.0.2")));
    let namespaces = |team: &str| {
        vec![
            convert::namespace_profile("web", &BTreeMap::from([("team".into(), team.into())])),
            convert::namespace_profile("db", &BTreeMap::new()),
        ]
    };
    ok(sync::sync_profiles(&c, "kns.", namespaces("red")));
    assert!(allowed(&c), "no policy yet: profiles allow");
    let np = ok(convert::network_policy(&json!({
        "metadata": {"name": "from-blue", "namespace": "db"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]}
    })));
    ok(sync::sync_network_policies(&c, vec![np]));
    assert!(!allowed(&c), "policy created: red namespace refused");
    ok(sync::sync_profiles(&c, "kns.", namespaces("blue")));
    assert!(allowed(&c), "namespace relabelled blue: admitted");
    ok(sync::sync_profiles(&c, "kns.", namespaces("red")));
    assert!(!allowed(&c), "back to red: refused");
    ok(sync::sync_network_policies(&c, vec![]));
    assert!(allowed(&c), "policy deleted: lifted");
}
