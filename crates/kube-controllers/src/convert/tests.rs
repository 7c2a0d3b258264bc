use super::*;
use proptest::prelude::*;

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn namespace_profile_as_calico_writes_it() {
    let p = namespace_profile("prod", &labels(&[("team", "a")]));
    let Resource::Profile(o) = &p else {
        panic!("not a profile")
    };
    assert_eq!(o.metadata.name, "kns.prod");
    assert_eq!(o.spec.ingress.len(), 1);
    assert_eq!(o.spec.ingress[0].action, "Allow");
    assert_eq!(o.spec.egress[0].action, "Allow");
    assert_eq!(
        o.spec.labels_to_apply,
        labels(&[("pcns.team", "a"), ("pcns.projectcalico.org/name", "prod")])
    );
    assert!(calico_datastore::Client::prepare(p).is_ok());
}

#[test]
fn service_account_profile_as_calico_writes_it() {
    let p = service_account_profile("prod", "web", &labels(&[("role", "fe")]));
    let Resource::Profile(o) = &p else {
        panic!("not a profile")
    };
    assert_eq!(o.metadata.name, "ksa.prod.web");
    assert_eq!(
        o.spec.labels_to_apply,
        labels(&[("pcsa.role", "fe"), ("pcsa.projectcalico.org/name", "web")])
    );
}

fn wep(labels: BTreeMap<String, String>) -> Resource {
    calico_api::decode_value(serde_json::json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "WorkloadEndpoint",
        "metadata": {"name": "node1-k8s-web-eth0", "namespace": "prod", "labels": labels},
        "spec": {"orchestrator": "k8s", "node": "node1", "pod": "web", "endpoint": "eth0",
                 "containerID": "abc", "interfaceName": "cali0123456789a",
                 "ipNetworks": ["10.0.0.1/32"], "profiles": ["kns.prod"]}
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn relabel_touches_only_labels_and_is_idempotent() {
    let old = wep(labels(&[
        ("app", "web"),
        (LABEL_NAMESPACE, "prod"),
        (LABEL_ORCHESTRATOR, "k8s"),
    ]));
    let pod = Pod {
        namespace: "prod".into(),
        name: "web".into(),
        labels: labels(&[("app", "web2")]),
        service_account: Some("default".into()),
        node: None,
    };
    assert_eq!(endpoint_pod(&old), Some(("prod".into(), "web".into())));
    let new = relabel_endpoint(&old, &pod).unwrap_or_else(|| panic!("no change"));
    let (Resource::WorkloadEndpoint(a), Resource::WorkloadEndpoint(b)) = (&old, &new) else {
        panic!("kind")
    };
    assert_eq!(a.spec, b.spec);
    assert_eq!(b.metadata.labels["app"], "web2");
    assert_eq!(b.metadata.labels[LABEL_SERVICE_ACCOUNT], "default");
    assert_eq!(relabel_endpoint(&new, &pod), None);
}

#[test]
fn network_policy_drops_server_fields() {
    let api = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny", "namespace": "prod", "uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                     "resourceVersion": "42", "generation": 1,
                     "creationTimestamp": "2024-01-01T00:00:00Z",
                     "managedFields": [{"manager": "kubectl"}]},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}
    });
    let np = network_policy(&api).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(np.metadata.name, "deny");
    assert_eq!(np.namespace(), "prod");
    assert_eq!(np.metadata.resource_version, None);
    let bad = serde_json::json!({"metadata": {"name": "x", "namespace": "p"},
        "spec": {"podSelector": {}, "bogus": 1}});
    assert!(network_policy(&bad).is_err());
}

proptest! {
    #[test]
    fn namespace_labels_all_carried(
        ns in "[a-z][a-z0-9-]{0,10}[a-z0-9]",
        l in proptest::collection::btree_map("[a-z]{1,8}", "[a-z0-9]{0,8}", 0..6),
    ) {
        let Resource::Profile(o) = namespace_profile(&ns, &l) else { panic!("kind") };
        prop_assert_eq!(o.spec.labels_to_apply.len(), l.len() + 1);
        for (k, v) in &l {
            prop_assert_eq!(o.spec.labels_to_apply.get(&format!("pcns.{k}")), Some(v));
        }
        prop_assert_eq!(o.spec.labels_to_apply.get("pcns.projectcalico.org/name"), Some(&ns));
    }

    #[test]
    fn endpoint_labels_keep_pod_labels_and_calico_ones(
        l in proptest::collection::btree_map("[a-z]{1,8}", "[a-z0-9]{0,8}", 0..6),
        sa in proptest::option::of("[a-z]{1,8}"),
    ) {
        let pod = Pod { namespace: "ns".into(), name: "p".into(), labels: l.clone(), service_account: sa.clone(), node: None };
        let out = endpoint_labels(&pod, &BTreeMap::new());
        for (k, v) in &l { prop_assert_eq!(out.get(k), Some(v)); }
        prop_assert_eq!(out.get(LABEL_NAMESPACE).map(String::as_str), Some("ns"));
        prop_assert_eq!(out.get(LABEL_SERVICE_ACCOUNT), sa.as_ref());
        prop_assert_eq!(endpoint_labels(&pod, &out), out);
    }
}
