//! Calico v3.31's YAML through the real calicoctl, on a real SQLite file and
//! a real etcd: one document per kind with every field of Calico's CRDs set
//! (`tests/fixtures/calico-3.31/every-field.yaml`) is applied, read back
//! whole with `get -o yaml`, and each field calico-rs stores without acting
//! on it is named once on stderr; a misspelled field is still refused.

use serde_json::Value;

mod common;
use common::*;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/calico-3.31/every-field.yaml"
);

/// The fixture's documents as JSON.
fn documents() -> Vec<Value> {
    let text = std::fs::read_to_string(FIXTURE).unwrap_or_else(|e| panic!("{e}"));
    text.split("\n---\n")
        .map(|d| calico_api::codec::yaml_value(d).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Whether every value of `given` is in `got` (false may be left out, as Calico does).
fn contains(got: &Value, given: &Value) -> bool {
    match (got, given) {
        (Value::Object(g), Value::Object(w)) => w.iter().all(|(k, v)| {
            g.get(k)
                .map_or(v == &Value::Bool(false), |x| contains(x, v))
        }),
        (Value::Array(g), Value::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(a, b)| contains(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => got == given,
    }
}

fn every_field_is_applied_stored_and_warned(ds: Ds) {
    let docs = documents();
    let (out, err) = ds.ok_both(&["apply", "-f", FIXTURE]);
    assert_eq!(
        out.trim(),
        format!("Successfully applied {} resource(s)", docs.len())
    );
    // Named once each, with what is not acted on.
    for (resource, field) in [
        ("FelixConfiguration(default)", "spec.programClusterRoutes"),
        ("FelixConfiguration(default)", "spec.flowLogsFlushInterval"),
        ("FelixConfiguration(default)", "spec.nftablesMarkMask"),
        ("IPPool(every-field)", "spec.namespaceSelector"),
        ("BGPPeer(every-field)", "spec.localASNumber"),
        ("BGPPeer(every-field)", "spec.reversePeering"),
        ("BGPFilter(every-field)", "spec.importV4[].operations"),
        (
            "KubeControllersConfiguration(default)",
            "no kube-controllers",
        ),
        (
            "StagedNetworkPolicy(default/every-field)",
            "Calico never enforces either",
        ),
        (
            "StagedGlobalNetworkPolicy(every-field)",
            "Calico never enforces either",
        ),
        (
            "StagedKubernetesNetworkPolicy(default/every-field)",
            "Calico never enforces either",
        ),
    ] {
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.contains(&format!(" {resource}: accepted, not implemented")))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "{resource} warned {} times:\n{err}",
            lines.len()
        );
        assert!(lines[0].starts_with("warning: "), "{}", lines[0]);
        assert!(
            lines[0].contains(field),
            "{resource}: {field} not named:\n{err}"
        );
    }
    // What calico-rs acts on is not named.
    assert!(!err.contains("spec.vxlanVNI"), "{err}");
    assert!(!err.contains("GlobalNetworkSet("), "{err}");

    // Every field comes back from the store.
    for given in &docs {
        let kind = given["kind"].as_str().unwrap_or_default();
        let name = given["metadata"]["name"].as_str().unwrap_or_default();
        let mut args = vec!["get", kind, name, "-o", "yaml"];
        if let Some(ns) = given["metadata"]["namespace"].as_str() {
            args.extend(["-n", ns]);
        }
        let (text, _) = ds.ok_both(&args);
        let got = calico_api::codec::yaml_value(&text).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            contains(&got["spec"], &given["spec"]),
            "{kind}({name}) lost a field:\ngiven {}\ngot   {}",
            given["spec"],
            got["spec"]
        );
    }

    // replace and create warn too.
    let (_, err) = ds.ok_both(&["replace", "-f", FIXTURE]);
    assert!(
        err.contains("BGPPeer(every-field): accepted, not implemented"),
        "{err}"
    );
    let pool = ds.file(
        "pool.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: by-namespace\nspec:\n  cidr: 10.251.0.0/16\n  namespaceSelector: team == 'a'\n",
    );
    let (_, err) = ds.ok_both(&["create", "-f", &pool]);
    assert_eq!(
        err.trim(),
        format!(
            "warning: {pool}: document 1: IPPool(by-namespace): accepted, not implemented: spec.namespaceSelector (stored and validated; calico-rs does not act on it)"
        )
    );
    // Nothing to write, nothing to say.
    let (_, err) = ds.ok_both(&["create", "--skip-exists", "-f", &pool]);
    assert_eq!(err, "");

    // A misspelled field is refused, and nothing is written.
    let typo = ds.file(
        "typo.yaml",
        "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata:\n  name: node.typo\nspec:\n  programClusterRoute: Enabled\n",
    );
    let Run {
        code,
        stdout: out,
        stderr: err,
    } = ds.run(&["apply", "-f", &typo]);
    assert_ne!(code, 0);
    assert!(
        format!("{out}{err}").contains("unknown field `programClusterRoute`"),
        "{out}{err}"
    );
    let code = ds.run(&["get", "felixconfiguration", "node.typo"]).code;
    assert_ne!(code, 0, "the refused resource was written");
    let typo = ds.file(
        "typo2.yaml",
        "apiVersion: projectcalico.org/v3\nkind: KubeControllersConfiguration\nmetadata:\n  name: default\nspec:\n  controllers:\n    nodes: {}\n",
    );
    let Run {
        code,
        stdout: out,
        stderr: err,
    } = ds.run(&["apply", "-f", &typo]);
    assert_ne!(code, 0);
    assert!(
        format!("{out}{err}").contains("spec.controllers.nodes: unknown field"),
        "{out}{err}"
    );
}

#[test]
fn calico_docs_samples_apply_with_explained_warnings() {
    let ds = local();
    let docs = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/calico-3.31/docs-examples.yaml"
    );
    let (out, err) = ds.ok_both(&["apply", "-f", docs]);
    assert_eq!(out.trim(), "Successfully applied 9 resource(s)");
    for line in err.lines() {
        assert!(
            line.starts_with("warning: ")
                && (line.ends_with("(stored and validated; calico-rs does not act on it)")
                    || line.ends_with("(stored and validated; calico-rs does not act on them)")
                    || line.contains("accepted, not implemented (")),
            "unexplained: {line}"
        );
    }
    // ipv6Support, ipipMTU (tunl0's MTU) and chainInsertMode are all acted on.
    assert!(!err.contains("FelixConfiguration(default)"), "{err}");
    assert!(
        err.contains("BGPConfiguration(default): accepted, not implemented: spec.bindMode ("),
        "{err}"
    );
}

#[test]
fn every_field_on_the_local_store() {
    every_field_is_applied_stored_and_warned(local());
}

#[test]
fn every_field_on_etcd() {
    every_field_is_applied_stored_and_warned(etcd());
}
