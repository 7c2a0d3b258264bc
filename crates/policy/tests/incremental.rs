//! Incremental updates: what a diff contains for the usual changes, chain
//! sharing between endpoints, and the `Engine` wrapper.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use calico_policy::nft::compile::compile;
use calico_policy::nft::diff::{Command, diff};
use calico_policy::{Engine, Model, PolicyInput, Ruleset};
use common::{iface, input, namespace, pod, pod_on};

const POLICY: &str = "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: web, namespace: a}\nspec:\n  selector: app == 'web'\n  ingress:\n  - {action: Allow, protocol: TCP, source: {selector: app == 'web'}, destination: {ports: [80]}}\n";

/// `n` local web pods in namespace `a`, plus `extra` documents.
fn cluster(n: usize, extra: &str) -> PolicyInput {
    let mut yaml = namespace("a", &[]);
    for i in 0..n {
        yaml.push_str(&pod(
            "a",
            &format!("p{i}"),
            &format!("10.0.0.{}", i + 1),
            &[("app", "web")],
        ));
    }
    yaml.push_str(extra);
    let mut inp = input(&yaml);
    inp.local_interfaces = (0..n).map(|i| iface(&format!("p{i}"))).collect();
    inp
}

fn ruleset(i: &PolicyInput) -> Ruleset {
    compile(&Model::build(i))
}

fn kinds(cmds: &[Command]) -> Vec<&'static str> {
    cmds.iter()
        .map(|c| match c {
            Command::AddSet(..) => "add set",
            Command::AddMap(..) => "add map",
            Command::AddChain(..) => "add chain",
            Command::AddElements(..) => "add elements",
            Command::DeleteElements(..) => "delete elements",
            Command::FlushChain(..) => "flush chain",
            Command::AddRule(..) => "add rule",
            Command::AddMapEntries(..) => "add map entries",
            Command::DeleteMapEntries(..) => "delete map entries",
            Command::DeleteChain(..) => "delete chain",
            Command::DeleteSet(..) => "delete set",
            Command::DeleteMap(..) => "delete map",
        })
        .collect()
}

#[test]
fn adding_a_pod_adds_elements_only() {
    let (old, new) = (ruleset(&cluster(3, POLICY)), ruleset(&cluster(4, POLICY)));
    let t = diff(&old, &new);
    assert_eq!(
        kinds(&t.commands),
        vec!["add elements", "add map entries", "add map entries"],
        "{t}"
    );
    let text = t.to_string();
    assert!(
        text.lines()
            .all(|l| l.starts_with("add element inet calico-policy ")),
        "{text}"
    );
    assert!(text.contains("{ 10.0.0.4 }"), "{text}");
    assert!(text.contains("\"calip3\" : jump tw-"), "{text}");
}

#[test]
fn removing_a_pod_deletes_elements_only() {
    let t = diff(&ruleset(&cluster(4, POLICY)), &ruleset(&cluster(3, POLICY)));
    assert_eq!(
        kinds(&t.commands),
        vec![
            "delete elements",
            "delete map entries",
            "delete map entries"
        ],
        "{t}"
    );
}

#[test]
fn a_remote_pod_only_changes_sets() {
    let old = cluster(2, POLICY);
    let mut new = cluster(
        2,
        &format!(
            "{POLICY}{}",
            pod_on("node2", "a", "r", "10.0.9.9", &[("app", "web")], &[])
        ),
    );
    new.local_interfaces = old.local_interfaces.clone();
    let t = diff(&ruleset(&old), &ruleset(&new));
    assert_eq!(kinds(&t.commands), vec!["add elements"], "{t}");
}

#[test]
fn changing_a_policy_refills_its_chain_only() {
    let changed = POLICY.replace("ports: [80]", "ports: [81]");
    let t = diff(
        &ruleset(&cluster(3, POLICY)),
        &ruleset(&cluster(3, &changed)),
    );
    assert_eq!(
        kinds(&t.commands),
        vec!["flush chain", "add rule", "add rule"],
        "{t}"
    );
    let changed = POLICY.replace("app == 'web'}, destination", "app == 'db'}, destination");
    let t = diff(
        &ruleset(&cluster(3, POLICY)),
        &ruleset(&cluster(3, &changed)),
    );
    assert_eq!(
        kinds(&t.commands),
        vec![
            "add set",
            "add set",
            "flush chain",
            "add rule",
            "add rule",
            "delete set",
            "delete set"
        ],
        "{t}"
    );
}

#[test]
fn relabelling_a_pod_repoints_its_map_entries() {
    let old = cluster(3, POLICY);
    let mut new = old.clone();
    new.workload_endpoints[0]
        .metadata
        .labels
        .insert("app".into(), "db".into());
    let t = diff(&ruleset(&old), &ruleset(&new));
    assert_eq!(
        kinds(&t.commands),
        vec![
            "add chain",
            "delete elements",
            "add rule",
            "add rule",
            "add rule",
            "delete map entries",
            "add map entries"
        ],
        "{t}"
    );
    // Both ends of the path: the pod's ingress chain changed (no policy selects it now),
    // its egress chain did not (no egress policy either way).
    let text = t.to_string();
    assert!(
        text.contains("delete element inet calico-policy wl-to { \"calip0\" }"),
        "{text}"
    );
    assert!(!text.contains("wl-from"), "{text}");
}

#[test]
fn endpoints_with_the_same_policies_share_chains() {
    let r = ruleset(&cluster(50, POLICY));
    let count = |prefix: &str| r.chains.keys().filter(|k| k.starts_with(prefix)).count();
    assert_eq!((count("tw-"), count("fw-"), count("pi-")), (1, 1, 1));
    assert_eq!(r.maps["wl-to"].elements.len(), 50);
    assert_eq!(r.sets.values().map(|s| s.elements.len()).max(), Some(50));
}

#[test]
fn problems_do_not_stop_the_rest() {
    let broken = "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: broken}\nspec: {selector: 'app ==', ingress: [{action: Deny}]}\n";
    let with_broken = cluster(3, &format!("{POLICY}{broken}"));
    let m = Model::build(&with_broken);
    assert_eq!(m.problems.len(), 1);
    assert_eq!(compile(&m), ruleset(&cluster(3, POLICY)));
}

#[test]
fn engine_writes_the_table_then_transactions() {
    let mut e = Engine::new();
    let first = e.update(&cluster(2, POLICY));
    assert!(
        first
            .script
            .starts_with("table inet calico-policy {}\ndelete table inet calico-policy\n")
    );
    assert!(first.problems.is_empty());
    assert_eq!(
        e.update(&cluster(2, POLICY)).script,
        "",
        "no change, nothing to do"
    );
    let next = e.update(&cluster(3, POLICY)).script;
    assert!(next.lines().all(|l| l.starts_with("add element")), "{next}");
    assert_eq!(e.current(), Some(&ruleset(&cluster(3, POLICY))));
    e.forget();
    assert!(
        e.update(&cluster(3, POLICY))
            .script
            .starts_with("table inet calico-policy {}")
    );
}
