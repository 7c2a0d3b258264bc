//! The resolved model: labels, effective selectors, inferred types, tier and
//! policy order, and problems that leave only the bad resource out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use calico_api::meta::Object;
use calico_api::resources::{NetworkPolicySpec, Protocol, Rule};
use calico_policy::model::{Direction, EndpointId, Model, PolicyKind};
use common::{input, namespace, pod};

fn model(yaml: &str) -> Model {
    Model::build(&input(yaml))
}

fn policy_names(m: &Model) -> Vec<(String, Vec<String>)> {
    m.tiers
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.policies.iter().map(|p| p.id.name.clone()).collect(),
            )
        })
        .collect()
}

#[test]
fn workload_labels_as_calico_computes_them() {
    let m = model(&[
        namespace("shop", &[("team", "blue")]),
        "---\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: extra}\nspec: {labelsToApply: {app: from-profile, other: x, pcns.team: red}}\n".into(),
        "---\napiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {name: w, namespace: shop, labels: {app: web}}\nspec: {orchestrator: k8s, node: node1, interfaceName: caliw, ipNetworks: [10.0.0.1/32, 'fd00::1'], serviceAccountName: sa1, profiles: [kns.shop, extra]}\n".into(),
    ]
    .concat());
    let ep = m.endpoint(&EndpointId::workload("shop", "w")).unwrap();
    let l = &ep.labelled.labels;
    assert_eq!(l["app"], "web", "own labels win over profiles");
    assert_eq!(l["pcns.team"], "blue", "earlier profile wins");
    assert_eq!(l["other"], "x");
    assert_eq!(l["projectcalico.org/namespace"], "shop");
    assert_eq!(l["projectcalico.org/orchestrator"], "k8s");
    assert_eq!(l["projectcalico.org/serviceaccount"], "sa1");
    assert_eq!(l["pcns.projectcalico.org/name"], "shop");
    assert!(!ep.labelled.global);
    let nets: Vec<String> = ep.labelled.nets.iter().map(ToString::to_string).collect();
    assert_eq!(nets, vec!["10.0.0.1/32", "fd00::1/128"]);
}

#[test]
fn effective_policy_selectors() {
    let m = model(&[
        namespace("a", &[("team", "blue")]),
        pod("a", "x", "10.0.0.1", &[("app", "web")]),
        "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: np, namespace: a}\nspec: {selector: app == 'web', serviceAccountSelector: role == 'x', ingress: [{action: Allow}]}\n".into(),
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: gnp}\nspec: {namespaceSelector: team == 'blue', serviceAccountSelector: all(), ingress: [{action: Allow}]}\n".into(),
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: gnp-all}\nspec: {namespaceSelector: all(), ingress: [{action: Allow}]}\n".into(),
    ]
    .concat());
    let sel = |name: &str| {
        m.tiers[0]
            .policies
            .iter()
            .find(|p| p.id.name == name)
            .unwrap()
            .selector
            .to_string()
    };
    assert_eq!(
        sel("np"),
        "(app == \"web\" && projectcalico.org/namespace == \"a\" && pcsa.role == \"x\")"
    );
    assert_eq!(
        sel("gnp"),
        "(pcns.team == \"blue\" && has(projectcalico.org/serviceaccount))"
    );
    assert_eq!(sel("gnp-all"), "has(projectcalico.org/namespace)");
}

#[test]
fn rule_selectors_follow_libcalico_go() {
    let m = model(&[
        namespace("a", &[]),
        "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: np, namespace: a}\nspec:\n  ingress:\n  - {action: Allow, source: {nets: [10.0.0.0/8]}}\n  - {action: Allow, source: {selector: app == 'x'}}\n  - {action: Allow, source: {notSelector: app == 'x'}}\n  - {action: Allow, source: {namespaceSelector: team == 'b', selector: app == 'x'}}\n  - {action: Allow, source: {serviceAccounts: {names: [s1, s2], selector: k == 'v'}}}\n  - {action: Allow, source: {namespaceSelector: global()}}\n".into(),
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\nspec:\n  ingress:\n  - {action: Allow, source: {selector: app == 'x'}}\n  - {action: Allow, source: {namespaceSelector: all()}}\n".into(),
    ]
    .concat());
    let rules = |name: &str| -> Vec<(Option<String>, Option<String>)> {
        let p = m.tiers[0]
            .policies
            .iter()
            .find(|p| p.id.name == name)
            .unwrap();
        p.rules(Direction::Ingress)
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.src.selector.as_ref().map(ToString::to_string),
                    r.src.not_selector.as_ref().map(ToString::to_string),
                )
            })
            .collect()
    };
    let ns = "projectcalico.org/namespace == \"a\"";
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        rules("np"),
        vec![
            (None, None),
            (s(&format!("({ns} && app == \"x\")")), None),
            (s(ns), s("app == \"x\"")),
            (s("(pcns.team == \"b\" && app == \"x\")"), None),
            (
                s(&format!(
                    "({ns} && (pcsa.k == \"v\" && projectcalico.org/serviceaccount in {{\"s1\", \"s2\"}}))"
                )),
                None
            ),
            (s("!has(projectcalico.org/namespace)"), None),
        ]
    );
    assert_eq!(
        rules("g"),
        vec![
            (s("app == \"x\""), None),
            (s("has(projectcalico.org/namespace)"), None)
        ]
    );
}

#[test]
fn types_are_inferred_like_calico() {
    let m = model(
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: none}\nspec: {}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: in}\nspec: {ingress: [{action: Allow}]}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: out}\nspec: {egress: [{action: Allow}]}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: both}\nspec: {ingress: [{action: Allow}], egress: [{action: Allow}]}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: explicit}\nspec: {types: [Egress]}\n",
    );
    let governs: Vec<(String, bool, bool)> = m.tiers[0]
        .policies
        .iter()
        .map(|p| (p.id.name.clone(), p.ingress.is_some(), p.egress.is_some()))
        .collect();
    assert_eq!(
        governs,
        vec![
            ("both".into(), true, true),
            ("explicit".into(), false, true),
            ("in".into(), true, false),
            ("none".into(), true, false),
            ("out".into(), false, true),
        ]
    );
}

#[test]
fn tiers_and_policies_are_ordered_like_felix() {
    let m = model(
        "---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: late}\nspec: {}\n---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: first}\nspec: {order: 1}\n---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: b-second}\nspec: {order: 2000000}\n---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: a-second}\nspec: {order: 2000000}\n\
---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: l}\nspec: {tier: late}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: f}\nspec: {tier: first}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: bs}\nspec: {tier: b-second}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: as}\nspec: {tier: a-second}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: m}\nspec: {tier: missing}\n\
---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: d-none}\nspec: {}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: d-5}\nspec: {order: 5}\n---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: d-1, namespace: z}\nspec: {order: 1}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: d-1}\nspec: {order: 1}\n---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: d-1, namespace: a}\nspec: {order: 1}\n",
    );
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        policy_names(&m),
        vec![
            ("first".into(), s(&["f"])),
            ("default".into(), s(&["d-1", "d-1", "d-1", "d-5", "d-none"])),
            ("a-second".into(), s(&["as"])),
            ("b-second".into(), s(&["bs"])),
            ("late".into(), s(&["l"])),
            ("missing".into(), s(&["m"])),
        ]
    );
    // Ties: name, then namespace ("" for global policies sorts first), then kind.
    let d1: Vec<(Option<String>, PolicyKind)> = m.tiers[1].policies[..3]
        .iter()
        .map(|p| (p.id.namespace.clone(), p.id.kind))
        .collect();
    assert_eq!(
        d1,
        vec![
            (None, PolicyKind::GlobalNetworkPolicy),
            (Some("a".into()), PolicyKind::NetworkPolicy),
            (Some("z".into()), PolicyKind::NetworkPolicy),
        ]
    );
    assert_eq!(
        m.tiers[1].order,
        Some(1_000_000.0),
        "the default tier exists with Calico's order"
    );
    assert!(!m.tiers[5].exists && !m.tiers[5].pass_by_default);
    let problems: Vec<String> = m.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].starts_with("Tier(missing): does not exist"));
}

#[test]
fn bad_policies_are_reported_and_left_out() {
    let bad = [
        (
            "sel",
            "{selector: 'app ==', ingress: [{action: Allow}]}",
            "spec.selector: invalid selector",
        ),
        (
            "cidr",
            "{ingress: [{action: Allow, source: {nets: [10.0.0.0/33]}}]}",
            "spec.ingress[0].source.nets[0]",
        ),
        (
            "action",
            "{ingress: [{action: Reject}]}",
            "spec.ingress[0].action: \"Reject\" is not Allow",
        ),
        (
            "icmp",
            "{ingress: [{action: Allow, protocol: TCP, icmp: {type: 8}}]}",
            "spec.ingress[0].icmp: requires protocol ICMP",
        ),
        (
            "ports",
            "{ingress: [{action: Allow, destination: {ports: [80]}}]}",
            "spec.ingress[0].destination.ports: rules that match on ports",
        ),
        (
            "http",
            "{ingress: [{action: Allow, http: {methods: [GET]}}]}",
            "http",
        ),
        (
            "svc",
            "{egress: [{action: Allow, destination: {services: {name: kubernetes}}}]}",
            "services",
        ),
        (
            "nssel",
            "{ingress: [{action: Allow, source: {namespaceSelector: '!!('}}]}",
            "spec.ingress[0].source.namespaceSelector",
        ),
        ("types", "{types: [Sideways]}", "spec.types[0]"),
        (
            "untracked",
            "{doNotTrack: true, applyOnForward: true}",
            "doNotTrack",
        ),
    ];
    let mut yaml = String::new();
    for (name, spec, _) in &bad {
        yaml.push_str(&format!("---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: {name}}}\nspec: {spec}\n"));
    }
    yaml.push_str("---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: good}\nspec: {ingress: [{action: Allow}]}\n");
    let m = model(&yaml);
    assert_eq!(
        policy_names(&m),
        vec![("default".into(), vec!["good".to_string()])]
    );
    let problems: Vec<String> = m.problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), bad.len(), "{problems:#?}");
    for (name, _, expected) in &bad {
        let p = problems
            .iter()
            .find(|p| p.starts_with(&format!("GlobalNetworkPolicy({name}): ")))
            .unwrap_or_else(|| panic!("no problem for {name}: {problems:#?}"));
        assert!(p.contains(expected), "{p} lacks {expected}");
    }
}

#[test]
fn unknown_protocol_names_are_problems_not_panics() {
    // The YAML decoder refuses unknown protocol names; a caller building
    // resources in code can still hand one over.
    let mut inp = input(&namespace("a", &[]));
    let rule = Rule {
        action: "Allow".into(),
        protocol: Some(Protocol::Named("GRE".into())),
        ..Default::default()
    };
    let mut np = Object::new(
        "gre",
        NetworkPolicySpec {
            ingress: vec![rule],
            ..Default::default()
        },
    );
    np.metadata.namespace = Some("a".into());
    inp.network_policies.push(np);
    let m = Model::build(&inp);
    assert!(m.tiers.is_empty());
    assert_eq!(
        m.problems[0].to_string(),
        "NetworkPolicy(a/gre): spec.ingress[0].protocol: \"GRE\" is not TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite or a number"
    );
}

#[test]
fn bad_addresses_are_reported_per_field() {
    let m = model(
        "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: g}\nspec: {nets: [10.0.0.0/8]}\n---\napiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {name: any}\nspec: {node: node1, interfaceName: '*'}\n",
    );
    assert_eq!(m.labelled.len(), 1);
    assert!(
        m.problems[0]
            .to_string()
            .starts_with("HostEndpoint(any): spec.interfaceName")
    );
    let mut inp = input("");
    let mut set = Object::new(
        "s",
        calico_api::resources::NetworkSetSpec {
            nets: vec!["10.0.0.0/8".into(), "bogus".into()],
        },
    );
    set.metadata.namespace = Some("a".into());
    inp.network_sets.push(set);
    let m = Model::build(&inp);
    assert_eq!(m.labelled[0].nets.len(), 1, "the good net stays");
    assert!(
        m.problems[0]
            .to_string()
            .starts_with("NetworkSet(a/s): spec.nets[1]")
    );
}

#[test]
fn kubernetes_policies_join_the_default_tier_with_conversion_problems_reported() {
    let m = model(&[
        namespace("a", &[]),
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: k, namespace: a}\nspec:\n  podSelector: {}\n  ingress: [{ports: [{port: http, endPort: 90}]}, {}]\n".into(),
    ]
    .concat());
    assert_eq!(
        policy_names(&m),
        vec![("default".into(), vec!["knp.default.k".to_string()])]
    );
    assert_eq!(m.tiers[0].policies[0].order, Some(1000.0));
    assert_eq!(
        m.tiers[0].policies[0]
            .rules(Direction::Ingress)
            .map(<[_]>::len),
        Some(1)
    );
    assert!(
        m.problems[0]
            .to_string()
            .contains("spec.ingress[0] dropped")
    );
}
