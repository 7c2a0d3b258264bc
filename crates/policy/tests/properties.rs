//! Property tests over random clusters:
//! - the compiled nftables (run by the reference interpreter, per node)
//!   decides every packet as the oracle does, logs included;
//! - applying `diff(a, b)` to `a` gives `b`, step by step valid for the kernel;
//! - compiling is deterministic and every reference resolves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use calico_policy::model::{Model, proto};
use calico_policy::nft::compile::compile;
use calico_policy::nft::diff::diff;
use calico_policy::oracle::evaluate_model;
use calico_policy::{Packet, PolicyInput};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

const NAMESPACES: [&str; 2] = ["a", "b"];
const SELECTORS: [&str; 6] = [
    "",
    "all()",
    "app == 'web'",
    "app == 'db'",
    "has(app)",
    "app != 'web'",
];
const NS_SELECTORS: [&str; 4] = ["all()", "team == 'blue'", "team == 'red'", "global()"];
const NETS: [&str; 6] = [
    "10.0.0.0/24",
    "10.0.1.0/24",
    "10.0.0.1/32",
    "172.16.0.0/12",
    "fd00::/64",
    "0.0.0.0/0",
];
const TYPES: &[&[&str]] = &[&[], &["Ingress"], &["Egress"], &["Ingress", "Egress"]];
const PORTS: [&str; 4] = ["80", "80:90", "http", "53"];

/// A random source or destination side (protocol-dependent fields only when allowed).
fn entity(ports_ok: bool) -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::collection::vec(select(&NETS[..]), 1..3)),
        prop::option::of(prop::collection::vec(select(&NETS[..]), 1..2)),
        prop::option::of(select(&SELECTORS[1..])),
        prop::option::of(select(&SELECTORS[1..])),
        prop::option::of(select(&NS_SELECTORS[..])),
        prop::option::of(prop::collection::vec(select(&PORTS[..]), 1..3)),
        prop::option::of(prop::collection::vec(select(&PORTS[..]), 1..2)),
        0u8..8,
    )
        .prop_map(
            move |(nets, not_nets, sel, not_sel, ns_sel, ports, not_ports, pick)| {
                // Keep most sides small: use at most the fields `pick` enables.
                let mut e = serde_json::Map::new();
                let on = |bit: u8| pick & (1 << (bit % 3)) != 0;
                if let (Some(v), true) = (nets, on(0)) {
                    e.insert("nets".into(), json!(v));
                }
                if let (Some(v), true) = (not_nets, on(1)) {
                    e.insert("notNets".into(), json!(v));
                }
                if let (Some(v), true) = (sel, on(2)) {
                    e.insert("selector".into(), json!(v));
                }
                if let (Some(v), true) = (not_sel, on(0) && on(1)) {
                    e.insert("notSelector".into(), json!(v));
                }
                if let (Some(v), true) = (ns_sel, on(1) && on(2)) {
                    e.insert("namespaceSelector".into(), json!(v));
                }
                if ports_ok {
                    if let (Some(v), true) = (ports, on(2)) {
                        e.insert(
                            "ports".into(),
                            json!(v.iter().map(|p| port(p)).collect::<Vec<_>>()),
                        );
                    }
                    if let (Some(v), true) = (not_ports, on(0)) {
                        e.insert(
                            "notPorts".into(),
                            json!(v.iter().map(|p| port(p)).collect::<Vec<_>>()),
                        );
                    }
                }
                Value::Object(e)
            },
        )
}

fn port(p: &str) -> Value {
    p.parse::<u16>().map_or_else(|_| json!(p), |n| json!(n))
}

fn rule() -> impl Strategy<Value = Value> {
    (
        select(&["Allow", "Deny", "Pass", "Log"][..]),
        select(&["", "TCP", "UDP", "ICMP", "ICMPv6"][..]),
        prop::option::of(select(&[4u8, 6][..])),
        prop::option::of(select(&["TCP", "UDP"][..])),
        prop::option::of((select(&[0u8, 8][..]), prop::option::of(0u8..2))),
        any::<bool>(),
    )
        .prop_flat_map(
            |(action, protocol, ip_version, not_protocol, icmp, negate_icmp)| {
                let ports_ok = matches!(protocol, "TCP" | "UDP");
                (entity(ports_ok), entity(ports_ok)).prop_map(move |(src, dst)| {
                    let mut r = serde_json::Map::new();
                    r.insert("action".into(), json!(action));
                    if !protocol.is_empty() {
                        r.insert("protocol".into(), json!(protocol));
                    }
                    if let Some(v) = ip_version {
                        r.insert("ipVersion".into(), json!(v));
                    }
                    if let Some(p) = not_protocol.filter(|p| *p != protocol) {
                        r.insert("notProtocol".into(), json!(p));
                    }
                    if let (Some((t, code)), true) = (icmp, protocol.starts_with("ICMP")) {
                        let field = if negate_icmp { "notICMP" } else { "icmp" };
                        r.insert(field.into(), json!({"type": t, "code": code}));
                    }
                    if src.as_object().is_some_and(|o| !o.is_empty()) {
                        r.insert("source".into(), src.clone());
                    }
                    if dst.as_object().is_some_and(|o| !o.is_empty()) {
                        r.insert("destination".into(), dst.clone());
                    }
                    Value::Object(r)
                })
            },
        )
}

fn policy(i: usize) -> impl Strategy<Value = Value> {
    (
        any::<bool>(),
        select(&NAMESPACES[..]),
        select(&["", "t1", "t2"][..]),
        prop::option::of(select(&[1.0f64, 2.0][..])),
        select(&SELECTORS[..]),
        prop::option::of(select(&NS_SELECTORS[..2])),
        select(TYPES),
        prop::collection::vec(rule(), 0..3),
        prop::collection::vec(rule(), 0..3),
    )
        .prop_map(move |(global, ns, tier, order, sel, ns_sel, types, ingress, egress)| {
            let mut spec = json!({"selector": sel});
            if !tier.is_empty() {
                spec["tier"] = json!(tier);
            }
            if let Some(o) = order {
                spec["order"] = json!(o);
            }
            // Rules only for the directions the types allow (Calico refuses the rest).
            let (ing_ok, eg_ok) = (types.is_empty() || types.contains(&"Ingress"), types.is_empty() || types.contains(&"Egress"));
            if !types.is_empty() {
                spec["types"] = json!(types);
            }
            if ing_ok && !ingress.is_empty() {
                spec["ingress"] = json!(ingress);
            }
            if eg_ok && !egress.is_empty() {
                spec["egress"] = json!(egress);
            }
            let name = format!("p{i}");
            if global {
                if let Some(n) = ns_sel {
                    spec["namespaceSelector"] = json!(n);
                }
                json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": name}, "spec": spec})
            } else {
                json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec})
            }
        })
}

fn pod(i: usize) -> impl Strategy<Value = Value> {
    (
        select(&NAMESPACES[..]),
        prop::option::of(select(&["web", "db"][..])),
        select(&["node1", "node2"][..]),
        prop::option::of(select(&[80u16, 85, 8080][..])),
        any::<bool>(),
    )
        .prop_map(move |(ns, app, node, http, v6)| {
            let mut labels = json!({});
            if let Some(a) = app {
                labels["app"] = json!(a);
            }
            let mut nets = vec![format!("10.0.{}.{}/32", i % 2, i + 1)];
            if v6 {
                nets.push(format!("fd00::{}/128", i + 1));
            }
            let ports: Vec<Value> = http.iter().map(|p| json!({"name": "http", "protocol": "TCP", "port": p})).collect();
            json!({"apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
                   "metadata": {"name": format!("w{i}"), "namespace": ns, "labels": labels},
                   "spec": {"orchestrator": "k8s", "node": node, "interfaceName": format!("caliw{i}"),
                            "ipNetworks": nets, "profiles": [format!("kns.{ns}")], "ports": ports}})
        })
}

fn fixed_docs() -> Vec<Value> {
    vec![
        json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "t1"}, "spec": {"order": 10}}),
        json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier", "metadata": {"name": "t2"}, "spec": {"order": 20, "defaultAction": "Pass"}}),
        json!({"apiVersion": "projectcalico.org/v3", "kind": "Profile", "metadata": {"name": "kns.a"},
               "spec": {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}], "labelsToApply": {"pcns.team": "blue"}}}),
        json!({"apiVersion": "projectcalico.org/v3", "kind": "Profile", "metadata": {"name": "kns.b"},
               "spec": {"ingress": [{"action": "Deny", "protocol": "UDP"}, {"action": "Allow"}],
                        "egress": [{"action": "Deny", "destination": {"nets": ["8.8.8.8/32"]}}, {"action": "Allow"}],
                        "labelsToApply": {"pcns.team": "red"}}}),
        json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet", "metadata": {"name": "g", "labels": {"app": "db"}},
               "spec": {"nets": ["172.16.5.0/24"]}}),
        json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkSet", "metadata": {"name": "s", "namespace": "a", "labels": {"app": "web"}},
               "spec": {"nets": ["192.0.2.0/28"]}}),
    ]
}

fn cluster() -> impl Strategy<Value = PolicyInput> {
    let pods = (2usize..5).prop_flat_map(|n| (0..n).map(pod).collect::<Vec<_>>());
    let policies = (0usize..5).prop_flat_map(|n| (0..n).map(policy).collect::<Vec<_>>());
    (pods, policies).prop_map(|(pods, policies)| {
        let mut input = PolicyInput::default();
        for d in fixed_docs().into_iter().chain(pods).chain(policies) {
            input
                .add_document(d.clone())
                .unwrap_or_else(|e| panic!("{e}: {d}"));
        }
        input
    })
}

const OUTSIDE: [&str; 5] = [
    "10.0.0.200",
    "172.16.5.9",
    "192.0.2.3",
    "8.8.8.8",
    "fd00::99",
];

/// (protocol, destination port, ICMP type and code) of the probe packets.
const PROBES: [(u8, u16, (u8, u8)); 7] = [
    (proto::TCP, 80, (0, 0)),
    (proto::TCP, 85, (0, 0)),
    (proto::TCP, 8080, (0, 0)),
    (proto::UDP, 53, (0, 0)),
    (proto::UDP, 80, (0, 0)),
    (proto::ICMP, 0, (8, 0)),
    (proto::ICMP, 0, (0, 1)),
];

/// Packets between every pair of pods and with the outside, for every probe.
fn all_packets(m: &Model) -> Vec<Packet> {
    PROBES
        .iter()
        .flat_map(|&(protocol, port, icmp)| packets(m, protocol, port, icmp))
        .collect()
}

/// Packets between every pair of pods and with the outside, for one probe.
fn packets(m: &Model, protocol: u8, port: u16, icmp: (u8, u8)) -> Vec<Packet> {
    let pods: Vec<String> = m
        .endpoints
        .iter()
        .map(|e| format!("{}/{}", e.id.namespace.as_deref().unwrap_or(""), e.id.name))
        .collect();
    let mut names: Vec<String> = pods.clone();
    names.extend(OUTSIDE.iter().map(|s| s.to_string()));
    let mut out = Vec::new();
    for from in &names {
        for to in &names {
            if from == to || (!pods.contains(from) && !pods.contains(to)) {
                continue;
            }
            let mut p = common::packet(m, from, to, protocol, port);
            if p.src.is_ipv4() != p.dst.is_ipv4() {
                continue;
            }
            (p.icmp_type, p.icmp_code) = icmp;
            out.push(p);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn dataplane_agrees_with_oracle(input in cluster()) {
        let m = Model::build(&input);
        prop_assert!(m.problems.is_empty(), "{:?}", m.problems);
        let dataplane = common::Dataplane::new(&input);
        for p in all_packets(&m) {
            let v = evaluate_model(&m, &p);
            let (allowed, logs) = dataplane.send(&m, &p);
            prop_assert_eq!((v.allowed, v.logs), (allowed, logs), "{} for {:?}", v.reason, p);
        }
    }

    #[test]
    fn diff_applied_gives_the_new_ruleset(a in cluster(), b in cluster()) {
        for node in ["node1", "node2"] {
            let (ra, rb) = (common::node_ruleset(&a, node), common::node_ruleset(&b, node));
            prop_assert!(ra.check_references().is_ok());
            let mut applied = ra.clone();
            let t = diff(&ra, &rb);
            prop_assert!(applied.apply(&t).is_ok(), "{:?}\n{}", applied.apply(&t), t);
            prop_assert_eq!(&applied, &rb);
            prop_assert!(diff(&rb, &rb).is_empty());
        }
    }

    #[test]
    fn compiling_is_deterministic(input in cluster()) {
        let m = Model::build(&input);
        prop_assert_eq!(compile(&m), compile(&Model::build(&input)));
        prop_assert_eq!(compile(&m).full(), compile(&m).full());
    }
}
