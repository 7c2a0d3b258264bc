use serde_json::json;

use super::*;

fn np(spec: serde_json::Value) -> k8s::NetworkPolicy {
    let v = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u1"},
        "spec": spec,
    });
    k8s::NetworkPolicy::from_json(v).unwrap_or_else(|e| panic!("{e}"))
}

/// The converted policy as Calico's JSON, for compact comparisons.
fn converted(spec: serde_json::Value) -> (serde_json::Value, Vec<String>) {
    let (p, problems) = convert(&np(spec));
    let v = serde_json::to_value(&p.spec).unwrap_or_default();
    (v, problems.iter().map(ToString::to_string).collect())
}

fn ok(spec: serde_json::Value) -> serde_json::Value {
    let (v, problems) = converted(spec);
    assert!(problems.is_empty(), "{problems:?}");
    v
}

#[test]
fn name_namespace_order_and_selector() {
    let (p, problems) = convert(&np(json!({"podSelector": {}})));
    assert!(problems.is_empty());
    assert_eq!(p.metadata.name, "knp.default.web");
    assert_eq!(p.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(p.metadata.uid.as_deref(), Some("u1"));
    assert_eq!(p.spec.order, Some(1000.0));
    assert_eq!(p.spec.tier, None, "default tier");
    assert_eq!(
        p.spec.selector.as_deref(),
        Some("projectcalico.org/orchestrator == 'k8s'")
    );
    assert_eq!(
        p.spec.types,
        vec!["Ingress"],
        "no policyTypes means Ingress"
    );
    assert!(p.spec.ingress.is_empty() && p.spec.egress.is_empty());
}

#[test]
fn label_selectors_as_calico_writes_them() {
    let v = ok(json!({
        "podSelector": {
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [
                {"key": "x", "operator": "In", "values": ["p", "q"]},
                {"key": "y", "operator": "NotIn", "values": ["r"]},
                {"key": "z", "operator": "Exists"},
                {"key": "w", "operator": "DoesNotExist"}
            ]
        }
    }));
    assert_eq!(
        v["selector"],
        "projectcalico.org/orchestrator == 'k8s' && a == '1' && b == '2' && x in { 'p', 'q' } && y not in { 'r' } && has(z) && ! has(w)"
    );
    // And it parses with our selector parser.
    let s = v["selector"].as_str().unwrap_or_default();
    assert!(calico_api::selector::Selector::parse(s).is_ok());
}

#[test]
fn policy_types() {
    let types =
        |t: serde_json::Value| ok(json!({"podSelector": {}, "policyTypes": t}))["types"].clone();
    assert_eq!(types(json!(["Egress"])), json!(["Egress"]));
    assert_eq!(
        types(json!(["Egress", "Ingress"])),
        json!(["Ingress", "Egress"])
    );
    assert_eq!(types(json!(["Ingress"])), json!(["Ingress"]));
}

#[test]
fn empty_rule_lists_deny_and_empty_rule_allows_all() {
    let v = ok(
        json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}),
    );
    assert_eq!(v.get("ingress"), None);
    assert_eq!(v.get("egress"), None);
    let v = ok(json!({"podSelector": {}, "ingress": [{}]}));
    assert_eq!(v["ingress"], json!([{"action": "Allow"}]));
}

#[test]
fn peers_namespace_selectors_and_ip_blocks() {
    let v = ok(json!({
        "podSelector": {},
        "ingress": [{"from": [
            {"namespaceSelector": {}},
            {"namespaceSelector": {"matchLabels": {"team": "blue"}}, "podSelector": {"matchLabels": {"app": "db"}}},
            {"podSelector": {}},
            {"ipBlock": {"cidr": "10.0.0.5/16", "except": ["10.0.1.0/24"]}}
        ]}]
    }));
    assert_eq!(
        v["ingress"],
        json!([
            {"action": "Allow", "source": {"selector": "projectcalico.org/orchestrator == 'k8s'", "namespaceSelector": "all()"}},
            {"action": "Allow", "source": {"selector": "projectcalico.org/orchestrator == 'k8s' && app == 'db'", "namespaceSelector": "team == 'blue'"}},
            {"action": "Allow", "source": {"selector": "projectcalico.org/orchestrator == 'k8s'"}},
            {"action": "Allow", "source": {"nets": ["10.0.0.0/16"], "notNets": ["10.0.1.0/24"]}}
        ])
    );
}

#[test]
fn egress_peers_and_ports_go_to_the_destination() {
    let v = ok(json!({
        "podSelector": {"matchLabels": {"app": "web"}},
        "policyTypes": ["Egress"],
        "egress": [{"to": [{"ipBlock": {"cidr": "192.168.0.0/24"}}], "ports": [{"port": 53, "protocol": "UDP"}]}]
    }));
    assert_eq!(
        v["egress"],
        json!([{"action": "Allow", "protocol": "UDP", "destination": {"nets": ["192.168.0.0/24"], "ports": [53]}}])
    );
}

#[test]
fn ports_by_protocol_with_ranges_and_names() {
    let v = ok(json!({
        "podSelector": {},
        "ingress": [{
            "from": [{"podSelector": {"matchLabels": {"a": "1"}}}, {"podSelector": {"matchLabels": {"a": "2"}}}],
            "ports": [
                {"port": 82}, {"port": 80, "endPort": 81}, {"port": 9090}, {"port": "http"},
                {"protocol": "UDP", "port": 53},
                {"protocol": "SCTP"}
            ]
        }]
    }));
    let rules = v["ingress"].as_array().cloned().unwrap_or_default();
    // Protocols sorted by name (SCTP, TCP, UDP), then peers in order.
    let summary: Vec<(String, serde_json::Value, serde_json::Value)> = rules
        .iter()
        .map(|r| {
            (
                r["protocol"].as_str().unwrap_or("").to_string(),
                r["source"]["selector"].clone(),
                r["destination"]["ports"].clone(),
            )
        })
        .collect();
    let sel = |n: &str| {
        json!(format!(
            "projectcalico.org/orchestrator == 'k8s' && a == '{n}'"
        ))
    };
    assert_eq!(
        summary,
        vec![
            ("SCTP".into(), sel("1"), serde_json::Value::Null),
            ("SCTP".into(), sel("2"), serde_json::Value::Null),
            ("TCP".into(), sel("1"), json!(["http", "80:82", 9090])),
            ("TCP".into(), sel("2"), json!(["http", "80:82", 9090])),
            ("UDP".into(), sel("1"), json!([53])),
            ("UDP".into(), sel("2"), json!([53])),
        ]
    );
}

#[test]
fn all_ports_of_a_protocol_wins_and_port_without_protocol_is_tcp() {
    let v = ok(
        json!({"podSelector": {}, "ingress": [{"ports": [{"port": 80}, {"protocol": "TCP"}, {"port": 81}]}]}),
    );
    assert_eq!(
        v["ingress"],
        json!([{"action": "Allow", "protocol": "TCP"}])
    );
    let v = ok(json!({"podSelector": {}, "ingress": [{"ports": [{}]}]}));
    assert_eq!(
        v["ingress"],
        json!([{"action": "Allow", "protocol": "TCP"}])
    );
}

#[test]
fn simplify_ports_like_calico() {
    use Port::{Named, Number, Range};
    assert_eq!(simplify_ports(vec![Number(80)]), vec![Number(80)]);
    // One numeric port among names: unchanged, original order.
    assert_eq!(
        simplify_ports(vec![Number(80), Named("a".into())]),
        vec![Number(80), Named("a".into())]
    );
    assert_eq!(
        simplify_ports(vec![
            Number(82),
            Number(80),
            Number(81),
            Number(81),
            Number(9090),
            Named("x".into())
        ]),
        vec![Named("x".into()), Range(80, 82), Number(9090)]
    );
    assert_eq!(
        simplify_ports(vec![Range(1, 3), Range(4, 4)]),
        vec![Range(1, 4)]
    );
    assert_eq!(
        simplify_ports(vec![Range(65534, 65535), Number(0)]),
        vec![Number(0), Range(65534, 65535)]
    );
}

#[test]
fn bad_rules_are_dropped_and_reported() {
    let (v, problems) = converted(json!({
        "podSelector": {},
        "ingress": [
            {"ports": [{"port": "http", "endPort": 90}]},
            {"from": [{"ipBlock": {"cidr": "10.0.0.0/40"}}]},
            {"ports": [{"port": 443}]}
        ]
    }));
    assert_eq!(
        v["ingress"],
        json!([{"action": "Allow", "protocol": "TCP", "destination": {"ports": [443]}}])
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("NetworkPolicy.networking.k8s.io(shop/web): spec.ingress[0] dropped: invalid port \"http:90\""));
    assert!(problems[1].contains("spec.ingress[1] dropped: ipBlock CIDR \"10.0.0.0/40\""));
}
