//! The incremental state against the whole computation, over random
//! changes: after every step its ruleset equals `compile(Model::build(..))`
//! of everything it was given, and the transactions it handed out, applied
//! one after another, make that same ruleset.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::PolicyInput;
use crate::model::Model;
use crate::nft::compile::compile;

const NAMESPACES: &[&str] = &["a", "b"];
const LABELS: &[&str] = &["web", "db", "x"];
const SELECTORS: &[&str] = &[
    "all()",
    "app == 'web'",
    "app == 'db'",
    "has(app)",
    "team == 'red'",
    "app in {'web', 'x'}",
    "!has(team)",
    "global()",
];
const NETS: &[&str] = &[
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.3/32",
    "fd00::/64",
    "10.2.0.0/16",
];

#[derive(Debug, Clone)]
enum Op {
    Wep {
        ns: usize,
        i: u8,
        local: bool,
        label: usize,
        ip: u8,
        v6: bool,
        port: bool,
        sa: bool,
    },
    Hep {
        i: u8,
        local: bool,
        label: usize,
        named: bool,
    },
    Gnp {
        i: u8,
        sel: usize,
        peer: usize,
        not_peer: usize,
        named_port: bool,
        tier: bool,
        ns_sel: bool,
    },
    Np {
        ns: usize,
        i: u8,
        sel: usize,
        peer: usize,
    },
    Knp {
        ns: usize,
        label: usize,
    },
    Profile {
        ns: usize,
        team: Option<bool>,
        deny: bool,
    },
    NetSet {
        i: u8,
        nets: usize,
        label: usize,
        global: bool,
    },
    Tier {
        order: u8,
        pass: bool,
    },
    Settings {
        hosts: u8,
    },
    Remove(usize),
    /// The caller loads the table whole (`settle`, then `ruleset`) instead
    /// of applying a transaction; or (`dormant`) loads the structure first
    /// and then the transaction from it.
    Reload {
        dormant: bool,
    },
    /// Someone looks at the structure ahead of the next rebuild (which may
    /// use that compilation only if nothing changed since).
    Preview,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..2usize, 0..4u8, any::<bool>(), 0..3usize, 1..6u8, any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(ns, i, local, label, ip, v6, port, sa)| Op::Wep { ns, i, local, label, ip, v6, port, sa }),
        1 => (0..2u8, any::<bool>(), 0..3usize, any::<bool>())
            .prop_map(|(i, local, label, named)| Op::Hep { i, local, label, named }),
        3 => (0..3u8, 0..8usize, 0..8usize, 0..8usize, any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(i, sel, peer, not_peer, named_port, tier, ns_sel)| Op::Gnp { i, sel, peer, not_peer, named_port, tier, ns_sel }),
        2 => (0..2usize, 0..2u8, 0..8usize, 0..8usize)
            .prop_map(|(ns, i, sel, peer)| Op::Np { ns, i, sel, peer }),
        1 => (0..2usize, 0..3usize).prop_map(|(ns, label)| Op::Knp { ns, label }),
        2 => (0..2usize, prop::option::of(any::<bool>()), any::<bool>())
            .prop_map(|(ns, team, deny)| Op::Profile { ns, team, deny }),
        2 => (0..3u8, 0..5usize, 0..3usize, any::<bool>())
            .prop_map(|(i, nets, label, global)| Op::NetSet { i, nets, label, global }),
        1 => (0..3u8, any::<bool>()).prop_map(|(order, pass)| Op::Tier { order, pass }),
        1 => (0..3u8).prop_map(|hosts| Op::Settings { hosts }),
        3 => (0..64usize).prop_map(Op::Remove),
        1 => any::<bool>().prop_map(|dormant| Op::Reload { dormant }),
        1 => Just(Op::Preview),
    ]
}

fn resource(kind: &str, ns: Option<&str>, name: &str, labels: Value, spec: Value) -> Resource {
    let mut meta = json!({"name": name, "labels": labels});
    if let Some(ns) = ns {
        meta["namespace"] = json!(ns);
    }
    let r = calico_api::decode_value(json!({
        "apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": meta, "spec": spec}));
    match r {
        Ok(r) => r,
        Err(e) => panic!("test resource {kind}/{name}: {e}"),
    }
}

fn item(op: &Op) -> Option<Item> {
    let r = match *op {
        Op::Wep {
            ns,
            i,
            local,
            label,
            ip,
            v6,
            port,
            sa,
        } => {
            let node = if local { "me" } else { "other" };
            let name = format!("{node}-k8s-p{i}-eth0");
            let addr = if v6 {
                format!("fd00::{ip}/128")
            } else {
                format!("10.1.2.{ip}/32")
            };
            let mut spec = json!({"node": node, "orchestrator": "k8s", "pod": format!("p{i}"),
                "endpoint": "eth0", "interfaceName": format!("cali{ns}{i}"),
                "ipNetworks": [addr], "profiles": [format!("kns.{}", NAMESPACES[ns])]});
            if port {
                spec["ports"] =
                    json!([{"name": "http", "protocol": "TCP", "port": 80 + u16::from(i)}]);
            }
            if sa {
                spec["serviceAccountName"] = json!("sa1");
            }
            resource(
                "WorkloadEndpoint",
                Some(NAMESPACES[ns]),
                &name,
                json!({"app": LABELS[label]}),
                spec,
            )
        }
        Op::Hep {
            i,
            local,
            label,
            named,
        } => {
            let node = if local { "me" } else { "other" };
            let iface = if named {
                format!("eth{i}")
            } else {
                "*".to_string()
            };
            resource(
                "HostEndpoint",
                None,
                &format!("hep-{i}"),
                json!({"app": LABELS[label]}),
                json!({"node": node, "interfaceName": iface, "expectedIPs": [format!("10.2.0.{i}")]}),
            )
        }
        Op::Gnp {
            i,
            sel,
            peer,
            not_peer,
            named_port,
            tier,
            ns_sel,
        } => {
            let name = if tier {
                format!("t1.gnp-{i}")
            } else {
                format!("gnp-{i}")
            };
            let ports = if named_port {
                json!(["http", 443])
            } else {
                json!([80])
            };
            let mut spec = json!({"order": i, "selector": SELECTORS[sel],
                "tier": if tier { "t1" } else { "default" },
                "ingress": [{"action": "Allow", "protocol": "TCP",
                    "source": {"selector": SELECTORS[peer], "notSelector": SELECTORS[not_peer]},
                    "destination": {"ports": ports}},
                    {"action": "Deny", "source": {"nets": ["10.9.0.0/16"]}}],
                "egress": [{"action": "Allow", "destination": {"selector": SELECTORS[peer]}}]});
            if ns_sel {
                spec["namespaceSelector"] = json!("team == 'red'");
            }
            resource("GlobalNetworkPolicy", None, &name, json!({}), spec)
        }
        Op::Np { ns, i, sel, peer } => resource(
            "NetworkPolicy",
            Some(NAMESPACES[ns]),
            &format!("np-{i}"),
            json!({}),
            json!({"selector": SELECTORS[sel], "types": ["Ingress", "Egress"],
                "ingress": [{"action": "Allow", "source": {"selector": SELECTORS[peer]}}],
                "egress": [{"action": "Pass"}]}),
        ),
        Op::Knp { ns, label } => {
            let v = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "knp", "namespace": NAMESPACES[ns]},
                "spec": {"podSelector": {"matchLabels": {"app": LABELS[label]}},
                    "ingress": [{"from": [{"podSelector": {}}],
                        "ports": [{"protocol": "TCP", "port": "http"}]}]}});
            let np = match k8s::NetworkPolicy::from_json(v) {
                Ok(np) => np,
                Err(e) => panic!("test k8s policy: {e}"),
            };
            return Some(Item::KubernetesNetworkPolicy(np));
        }
        Op::Profile { ns, team, deny } => {
            let mut labels = json!({"pcns.projectcalico.org/name": NAMESPACES[ns]});
            if let Some(red) = team {
                labels["pcns.team"] = json!(if red { "red" } else { "blue" });
                labels["team"] = json!(if red { "red" } else { "blue" });
            }
            let action = if deny { "Deny" } else { "Allow" };
            resource(
                "Profile",
                None,
                &format!("kns.{}", NAMESPACES[ns]),
                json!({}),
                json!({"ingress": [{"action": action}], "egress": [{"action": "Allow"}],
                    "labelsToApply": labels}),
            )
        }
        Op::NetSet {
            i,
            nets,
            label,
            global,
        } => {
            let spec = json!({"nets": [NETS[nets], NETS[(nets + 2) % NETS.len()]]});
            let labels = json!({"app": LABELS[label]});
            if global {
                resource("GlobalNetworkSet", None, &format!("set-{i}"), labels, spec)
            } else {
                resource("NetworkSet", Some("a"), &format!("set-{i}"), labels, spec)
            }
        }
        Op::Tier { order, pass } => resource(
            "Tier",
            None,
            "t1",
            json!({}),
            json!({"order": 100 * u32::from(order), "defaultAction": if pass { "Pass" } else { "Deny" }}),
        ),
        Op::Settings { .. } | Op::Remove(_) | Op::Reload { .. } | Op::Preview => return None,
    };
    Item::from_resource(r, "me")
}

/// What the whole computation is given: every item held.
fn input(items: &BTreeMap<ItemId, Item>, settings: &Settings) -> PolicyInput {
    let mut i = PolicyInput {
        settings: settings.clone(),
        ..PolicyInput::default()
    };
    for it in items.values() {
        match it.clone() {
            Item::Tier(t) => i.tiers.push(t),
            Item::NetworkPolicy(o) => i.network_policies.push(o),
            Item::GlobalNetworkPolicy(o) => i.global_network_policies.push(o),
            Item::KubernetesNetworkPolicy(o) => i.kubernetes_network_policies.push(o),
            Item::Profile(o) => i.profiles.push(o),
            Item::NetworkSet(o) => i.network_sets.push(o),
            Item::GlobalNetworkSet(o) => i.global_network_sets.push(o),
            Item::WorkloadEndpoint { ep, local } => {
                if local {
                    i.local_interfaces.insert(ep.spec.interface_name.clone());
                }
                i.workload_endpoints.push(ep);
            }
            Item::HostEndpoint { ep, local } => {
                if local {
                    i.local_interfaces.insert(ep.spec.interface_name.clone());
                }
                i.host_endpoints.push(ep);
            }
        }
    }
    i
}

fn settings(hosts: u8) -> Settings {
    Settings {
        hosts: (0..hosts)
            .map(|h| std::net::IpAddr::from([172, 30, 0, 10 + h]))
            .collect(),
        ..Settings::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_the_whole_computation(ops in prop::collection::vec(op(), 1..50)) {
        let mut s = settings(1);
        let mut inc = Incremental::new(s.clone());
        let mut held: BTreeMap<ItemId, Item> = BTreeMap::new();
        inc.take_transaction();
        let mut kernel = inc.ruleset();
        // After a `Preview`: the next op's changes are looked at (compiled
        // ahead) before the op after it changes more and takes them all.
        let mut look = false;
        for op in &ops {
            match op {
                Op::Remove(which) => {
                    if !held.is_empty() {
                        let id = held.keys().nth(which % held.len()).cloned();
                        if let Some(id) = id {
                            held.remove(&id);
                            inc.remove(&id);
                        }
                    }
                }
                Op::Settings { hosts } => {
                    s = settings(*hosts);
                    inc.set_settings(s.clone());
                }
                Op::Reload { dormant: false } => {
                    inc.settle();
                    kernel = inc.ruleset();
                }
                Op::Preview => {
                    look = true;
                    continue;
                }
                Op::Reload { dormant: true } => {
                    let from = inc.preview_structure();
                    inc.settle();
                    let tx = inc.transaction_from_structure(&from);
                    kernel = from;
                    if let Err(e) = kernel.apply(&tx) {
                        return Err(TestCaseError::fail(format!("{e}\n{tx}")));
                    }
                    prop_assert_eq!(&kernel, &inc.ruleset(), "structure, then its transaction");
                }
                other => {
                    if let Some(it) = item(other) {
                        held.insert(it.id(), it.clone());
                        inc.upsert(it);
                    }
                }
            }
            if std::mem::take(&mut look) {
                inc.preview_structure();
                continue;
            }
            let tx = inc.take_transaction();
            let want = compile(&Model::build(&input(&held, &s)));
            prop_assert_eq!(&inc.ruleset(), &want);
            if let Err(e) = kernel.apply(&tx) {
                return Err(TestCaseError::fail(format!("{e}\n{tx}")));
            }
            prop_assert_eq!(&kernel, &want, "the transactions, replayed");
            let mut want_problems: Vec<String> =
                Model::build(&input(&held, &s)).problems.iter().map(ToString::to_string).collect();
            let mut got: Vec<String> = inc.problems().iter().map(ToString::to_string).collect();
            want_problems.sort();
            got.sort();
            prop_assert_eq!(got, want_problems);
        }
    }
}

/// A change of an endpoint elsewhere in the cluster is element changes
/// only: no chain is touched.
#[test]
fn a_remote_label_change_is_set_elements_only() {
    let mut inc = Incremental::new(Settings::default());
    for op in [
        Op::Wep {
            ns: 0,
            i: 0,
            local: true,
            label: 0,
            ip: 1,
            v6: false,
            port: false,
            sa: false,
        },
        Op::Gnp {
            i: 0,
            sel: 1,
            peer: 2,
            not_peer: 7,
            named_port: false,
            tier: false,
            ns_sel: false,
        },
        Op::Wep {
            ns: 1,
            i: 1,
            local: false,
            label: 1,
            ip: 2,
            v6: false,
            port: false,
            sa: false,
        },
    ] {
        if let Some(it) = item(&op) {
            inc.upsert(it);
        }
    }
    inc.take_transaction();
    let relabelled = Op::Wep {
        ns: 1,
        i: 1,
        local: false,
        label: 2,
        ip: 2,
        v6: false,
        port: false,
        sa: false,
    };
    if let Some(it) = item(&relabelled) {
        inc.upsert(it);
    }
    let tx = inc.take_transaction();
    assert!(!tx.is_empty());
    assert!(
        tx.commands
            .iter()
            .all(|c| matches!(c, Command::AddElements(..) | Command::DeleteElements(..))),
        "{tx}"
    );
    assert!(tx.to_string().contains("delete element"), "{tx}");
}
