//! The rulesets against the real nftables: golden tables pass `nft -c`
//! (check only, nothing is changed), and transactions applied in a private
//! network namespace (`unshare -n`, gone when the command exits) give the
//! same table as loading the new ruleset whole. Skipped, with the reason
//! printed, without `nft`, `unshare` or root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use calico_policy::nft::diff::diff;
use calico_policy::{Model, PolicyInput, Ruleset};
use common::{iface, input, namespace, pod, pod_on};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn skip(needs: &[&str]) -> bool {
    for t in needs {
        if !have(t) {
            eprintln!("skipped: {t} is not installed");
            return true;
        }
    }
    if !calico_testutil::is_root() {
        eprintln!("skipped: nftables needs root");
        return true;
    }
    false
}

fn sh(script: &str) -> String {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn nft_accepts_the_golden_rulesets() {
    if skip(&["nft"]) {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut checked = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "nft") {
            sh(&format!("nft -c -f {}", p.display()));
            checked += 1;
        }
    }
    assert!(checked >= 2);
}

/// `nft list table` made comparable: objects by name, set and map elements sorted.
fn normalize(listing: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Vec<String>)> = None;
    let mut elements: Vec<String> = Vec::new();
    let mut in_elements = false;
    for line in listing.lines() {
        let t = line.trim();
        if line.starts_with('\t') && !line.starts_with("\t\t") && t.ends_with('{') {
            current = Some((t.to_string(), Vec::new()));
            continue;
        }
        if line == "\t}" {
            if let Some((name, mut body)) = current.take() {
                elements.sort();
                body.push(format!("elements: {}", elements.join(" ")));
                out.insert(name, body.join("\n"));
            }
            elements.clear();
            continue;
        }
        let Some((_, body)) = current.as_mut() else {
            continue;
        };
        if let Some(rest) = t.strip_prefix("elements = {") {
            in_elements = true;
            elements.extend(
                rest.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty() && *x != "}")
                    .map(|x| x.trim_end_matches(" }").to_string()),
            );
            in_elements &= !t.ends_with('}');
            continue;
        }
        if in_elements {
            elements.extend(
                t.split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty() && *x != "}")
                    .map(|x| x.trim_end_matches(" }").to_string()),
            );
            in_elements = !t.ends_with('}');
            continue;
        }
        if !t.is_empty() {
            body.push(t.to_string());
        }
    }
    out
}

/// Loads `first` (and then `then`) in a fresh network namespace and lists the table.
fn listing(dir: &Path, first: &str, then: Option<&str>) -> String {
    let a = dir.join("first.nft");
    std::fs::write(&a, first).unwrap();
    let mut script = format!("nft -f {}", a.display());
    if let Some(t) = then {
        let b = dir.join("then.nft");
        std::fs::write(&b, t).unwrap();
        script.push_str(&format!(" && nft -f {}", b.display()));
    }
    sh(&format!(
        "unshare -n sh -c '{script} && nft list table inet calico-policy'"
    ))
}

fn ruleset(i: &PolicyInput) -> Ruleset {
    calico_policy::nft::compile::compile(&Model::build(i))
}

fn local(mut i: PolicyInput) -> PolicyInput {
    i.local_interfaces = i
        .workload_endpoints
        .iter()
        .filter(|w| w.spec.node == "node1")
        .map(|w| w.spec.interface_name.clone())
        .collect();
    i
}

fn scenario(pods: usize, policy: &str) -> PolicyInput {
    let mut yaml = namespace("a", &[("team", "blue")]);
    for i in 0..pods {
        yaml.push_str(&pod(
            "a",
            &format!("p{i}"),
            &format!("10.0.0.{}", i + 1),
            &[("app", if i % 2 == 0 { "web" } else { "db" })],
        ));
    }
    yaml.push_str(&pod_on(
        "node2",
        "a",
        "remote",
        "10.0.1.1",
        &[("app", "web")],
        &[("http", "TCP", 8080)],
    ));
    yaml.push_str(policy);
    local(input(&yaml))
}

#[test]
fn transactions_give_the_same_table_as_a_full_load() {
    if skip(&["nft", "unshare"]) {
        return;
    }
    let p1 = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: a}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  ingress: [{from: [{podSelector: {matchLabels: {app: db}}}], ports: [{port: http}, {port: 80}]}]\n";
    let p2 = "---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: log}\nspec:\n  selector: app == 'db'\n  ingress: [{action: Log, source: {nets: [10.0.0.0/8, 'fd00::/8']}}, {action: Deny, protocol: UDP}]\n  egress: [{action: Allow, destination: {notNets: [192.0.2.0/24]}}]\n";
    let golden = |name: &str| {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/golden")
                .join(name),
        )
        .unwrap();
        input(&text)
    };
    let steps: Vec<(&str, PolicyInput)> = vec![
        ("empty", PolicyInput::default()),
        ("three pods", scenario(3, p1)),
        ("a pod more", scenario(4, p1)),
        ("a policy more", scenario(4, &format!("{p1}{p2}"))),
        (
            "policy changed",
            scenario(4, &format!("{}{p2}", p1.replace("port: 80", "port: 81"))),
        ),
        ("pods gone", scenario(1, p2)),
        ("golden k8s", golden("k8s-namespaces.yaml")),
        ("golden tiers", golden("tiers-and-hosts.yaml")),
        ("empty again", PolicyInput::default()),
    ];
    let dir = tempfile::tempdir().unwrap();
    for pair in steps.windows(2) {
        let [(from_name, from), (to_name, to)] = pair else {
            unreachable!()
        };
        let (old, new) = (ruleset(from), ruleset(to));
        let t = diff(&old, &new).to_string();
        let applied = normalize(&listing(dir.path(), &old.full(), Some(&t)));
        let whole = normalize(&listing(dir.path(), &new.full(), None));
        assert_eq!(applied, whole, "{from_name} → {to_name} via:\n{t}");
        // The comparison sees every object, elements included.
        assert_eq!(
            whole.len(),
            new.sets.len() + new.maps.len() + new.chains.len(),
            "{whole:#?}"
        );
        let elements: usize = new.sets.values().map(|s| s.elements.len()).sum::<usize>()
            + new.maps.values().map(|m| m.elements.len()).sum::<usize>();
        let listed: usize = whole
            .values()
            .map(|b| b.lines().last().map_or(0, |l| l.split(' ').count() - 1))
            .sum();
        assert!(listed >= elements, "{listed} < {elements}: {whole:#?}");
    }
}

#[test]
fn one_more_pod_is_one_small_transaction_in_the_kernel() {
    if skip(&["nft", "unshare"]) {
        return;
    }
    let p = "---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: web, namespace: a}\nspec:\n  selector: app == 'web'\n  ingress: [{action: Allow, source: {selector: app == 'db'}}]\n";
    let (old, new) = (ruleset(&scenario(7, p)), ruleset(&scenario(8, p)));
    let t = diff(&old, &new).to_string();
    assert_eq!(t.lines().count(), 3, "{t}");
    assert!(t.lines().all(|l| l.starts_with("add element")), "{t}");
    let dir = tempfile::tempdir().unwrap();
    let applied = listing(dir.path(), &old.full(), Some(&t));
    assert!(
        applied.contains(&format!("\"{}\" : jump", iface("p7"))),
        "{applied}"
    );
}
