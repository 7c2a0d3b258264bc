//! Calico v3.31's resources as calico-rs reads them: the checked-in
//! fixture (`tests/fixtures/calico-3.31/every-field.yaml`, generated from
//! Calico's CRDs) sets every field of every kind; each document decodes,
//! validates, and keeps every field it was given. A field outside Calico's
//! schema stays an error, at the top and deep inside.

use std::collections::{BTreeMap, BTreeSet};

use calico_api::resources::{calico_fields, calico_schema};
use calico_api::{Kind, Resource, decode_documents, decode_value};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("../../../tests/fixtures/calico-3.31/every-field.yaml");
const FIELDS: &str = include_str!("../../../tests/fixtures/calico-3.31/fields.txt");

/// Fields Calico's validation refuses whenever they are set (IPPool's v1
/// `ipip` must be absent): not in the fixture, refused in
/// `new_fields_are_validated_as_calico`.
const REFUSED_BY_CALICO: &[&str] = &[
    "IPPool spec.ipip",
    "IPPool spec.ipip.enabled",
    "IPPool spec.ipip.mode",
];

fn fixture() -> Vec<Resource> {
    decode_documents(FIXTURE)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Every path set in `v`, `[]` for list items, `{}` for a map's values
/// when `maps` says the object at that path is a free map.
fn paths(kind: &str, v: &Value, path: &str, out: &mut BTreeSet<String>) {
    out.insert(path.to_string());
    match v {
        Value::Object(m) => {
            let schema_path = path.replace("[]", "");
            let is_map = calico_schema(kind, &schema_path)
                .is_some_and(|s| s.get("additionalProperties").is_some());
            for (k, x) in m {
                let p = if is_map {
                    format!("{path}{{}}")
                } else {
                    format!("{path}.{k}")
                };
                paths(kind, x, &p, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                paths(kind, x, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// Whether every value of `given` is in `got` (`got` may hold defaults more).
fn contains(got: &Value, given: &Value) -> bool {
    match (got, given) {
        // Calico omits false and empty values too (`omitempty`).
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

#[test]
fn every_field_of_every_kind_is_accepted_validated_and_kept() {
    let docs = fixture();
    let mut set: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let text: Vec<Value> = serde_saphyr_docs();
    assert_eq!(docs.len(), text.len());
    for (r, given) in docs.iter().zip(&text) {
        let kind = r.kind().name().to_string();
        r.validate().unwrap_or_else(|e| panic!("{e}"));
        let mut stored = r.clone();
        stored.set_defaults();
        let out = stored.to_json();
        assert!(
            contains(&out["spec"], &given["spec"]),
            "{kind}: a field was lost:\ngiven {}\nkept  {}",
            given["spec"],
            out["spec"]
        );
        // Decoding what was written gives the same resource.
        assert_eq!(
            decode_value(out.clone()).ok(),
            Some(stored.clone()),
            "{kind}"
        );
        paths(
            &kind,
            &given["spec"],
            "spec",
            set.entry(kind.clone()).or_default(),
        );
    }
    let mut kinds = 0;
    let mut missing = Vec::new();
    for line in FIELDS.lines().filter(|l| !l.starts_with('#')) {
        let Some((kind, path)) = line.split_once(' ') else {
            continue;
        };
        assert!(Kind::from_name(kind).is_some(), "kind {kind} is unknown");
        if !set.get(kind).is_some_and(|s| s.contains(path)) && !REFUSED_BY_CALICO.contains(&line) {
            missing.push(line);
        }
        kinds += 1;
    }
    assert!(missing.is_empty(), "not set in the fixture: {missing:#?}");
    assert!(kinds > 1000, "{kinds} fields");
    // The fixture's field list is the schema calico-rs validates with.
    for kind in set.keys() {
        let from_schema: BTreeSet<String> = calico_fields(kind).into_iter().collect();
        let from_list: BTreeSet<String> = FIELDS
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{kind} ")))
            .map(str::to_string)
            .collect();
        assert_eq!(from_schema, from_list, "{kind}");
    }
}

fn serde_saphyr_docs() -> Vec<Value> {
    FIXTURE
        .split("\n---\n")
        .map(|d| calico_api::codec::yaml_value(d).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// A copy of `doc` with `value` put at JSON pointer `at`.
fn with(doc: &Value, at: &str, value: Value) -> Value {
    let mut d = doc.clone();
    let (parent, leaf) = at.rsplit_once('/').unwrap_or(("", at));
    if let Some(Value::Object(m)) = d.pointer_mut(parent) {
        m.insert(leaf.to_string(), value);
    }
    d
}

fn refused(doc: Value) -> String {
    match decode_value(doc) {
        Err(e) => e,
        Ok(r) => match r.validate() {
            Err(e) => e.to_string(),
            Ok(()) => String::new(),
        },
    }
}

#[test]
fn a_field_outside_calico_schema_is_still_refused() {
    let docs = serde_saphyr_docs();
    let by_kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .cloned()
            .unwrap_or_else(|| panic!("no {k}"))
    };
    // A misspelled top-level field of every kind.
    for d in &docs {
        let e = refused(with(d, "/spec/notACalicoField", json!(true)));
        assert!(e.contains("notACalicoField"), "{}: {e:?}", d["kind"]);
    }
    // Deep inside the parts kept as JSON, and Felix's old misspelling.
    let cases = [
        (
            "FelixConfiguration",
            "/spec/bpfConntrackTimeouts/tcpFinSeen",
            json!("30s"),
            "tcpFinSeen",
        ),
        (
            "FelixConfiguration",
            "/spec/externalNodesCIDRList",
            json!(["10.0.0.0/8"]),
            "externalNodesCIDRList",
        ),
        (
            "KubeControllersConfiguration",
            "/spec/controllers/nodes",
            json!({}),
            "spec.controllers.nodes: unknown field",
        ),
        (
            "BGPFilter",
            "/spec/importV4/0/communities/value",
            json!("1:2"),
            "communities.value: unknown field",
        ),
        ("StagedNetworkPolicy", "/spec/ingres", json!([]), "ingres"),
        (
            "StagedKubernetesNetworkPolicy",
            "/spec/podSelectors",
            json!({}),
            "podSelectors",
        ),
        (
            "IPPool",
            "/spec/namespaceSelectors",
            json!("all()"),
            "namespaceSelectors",
        ),
        (
            "BGPPeer",
            "/spec/localAsNumber",
            json!(65000),
            "localAsNumber",
        ),
    ];
    for (kind, at, v, want) in cases {
        let e = refused(with(&by_kind(kind), at, v));
        assert!(e.contains(want), "{kind} {at}: {e:?}");
    }
}

#[test]
fn new_fields_are_validated_as_calico() {
    let docs = serde_saphyr_docs();
    let by_kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .cloned()
            .unwrap_or_default()
    };
    let cases = [
        (
            "FelixConfiguration",
            "/spec/bpfRedirectToPeer",
            json!("Sometimes"),
            "spec.bpfRedirectToPeer",
        ),
        (
            "FelixConfiguration",
            "/spec/programClusterRoutes",
            json!("Yes"),
            "spec.programClusterRoutes",
        ),
        (
            "FelixConfiguration",
            "/spec/bpfKubeProxyHealthzPort",
            json!(70000),
            "spec.bpfKubeProxyHealthzPort",
        ),
        (
            "FelixConfiguration",
            "/spec/nftablesMarkMask",
            json!(-1),
            "spec.nftablesMarkMask",
        ),
        (
            "FelixConfiguration",
            "/spec/bpfExcludeCIDRsFromNAT",
            json!(["10.0.0.0/40"]),
            "spec.bpfExcludeCIDRsFromNAT[0]",
        ),
        (
            "FelixConfiguration",
            "/spec/externalNodesList",
            json!(["nope"]),
            "spec.externalNodesList[0]",
        ),
        (
            "FelixConfiguration",
            "/spec/flowLogsFlushInterval",
            json!("soon"),
            "spec.flowLogsFlushInterval",
        ),
        (
            "FelixConfiguration",
            "/spec/bpfPSNATPorts",
            json!("3000:2000"),
            "spec.bpfPSNATPorts",
        ),
        (
            "FelixConfiguration",
            "/spec/bpfConntrackTimeouts",
            json!({"tcpFinsSeen": 30}),
            "spec.bpfConntrackTimeouts.tcpFinsSeen",
        ),
        (
            "IPPool",
            "/spec/namespaceSelector",
            json!("app == "),
            "spec.namespaceSelector",
        ),
        (
            "IPPool",
            "/spec/ipip",
            json!({"enabled": true}),
            "spec.ipip",
        ),
        (
            "IPPool",
            "/spec/nat-outgoing",
            json!(true),
            "spec.nat-outgoing",
        ),
        (
            "BGPPeer",
            "/spec/reversePeering",
            json!("Automatic"),
            "spec.reversePeering",
        ),
        (
            "BGPFilter",
            "/spec/importV4/0/peerType",
            json!("EBGP"),
            "spec.importV4[0].peerType",
        ),
        (
            "BGPFilter",
            "/spec/importV4/0/priority",
            json!(0),
            "spec.importV4[0].priority",
        ),
        (
            "BGPFilter",
            "/spec/importV4/0/action",
            json!("Reject"),
            "operations are only allowed with action Accept",
        ),
        (
            "KubeControllersConfiguration",
            "/spec/healthChecks",
            json!("On"),
            "spec.healthChecks",
        ),
        (
            "KubeControllersConfiguration",
            "/spec/etcdV3CompactionPeriod",
            json!("often"),
            "spec.etcdV3CompactionPeriod",
        ),
        (
            "GlobalNetworkPolicy",
            "/spec/performanceHints",
            json!(["AssumeNeededOnEveryNode", "AssumeNeededOnEveryNode"]),
            "spec.performanceHints[1]",
        ),
        (
            "StagedNetworkPolicy",
            "/spec/performanceHints",
            json!(["Sometimes"]),
            "spec.performanceHints[0]",
        ),
        (
            "StagedNetworkPolicy",
            "/spec/stagedAction",
            json!("Apply"),
            "spec.stagedAction",
        ),
        (
            "StagedGlobalNetworkPolicy",
            "/spec/stagedAction",
            json!("Delete"),
            "must all be empty when stagedAction is Delete",
        ),
        (
            "StagedKubernetesNetworkPolicy",
            "/spec/policyTypes",
            json!(["Sideways"]),
            "spec.policyTypes[0]",
        ),
    ];
    for (kind, at, v, want) in cases {
        let e = refused(with(&by_kind(kind), at, v));
        assert!(e.contains(want), "{kind} {at}: {e:?}");
    }
    // A KubeControllersConfiguration needs its controllers (Calico's CRD).
    let e = refused(
        json!({"apiVersion": "projectcalico.org/v3", "kind": "KubeControllersConfiguration",
        "metadata": {"name": "default"}, "spec": {"healthChecks": "Enabled"}}),
    );
    assert!(
        e.contains("spec.controllers: this field is required"),
        "{e}"
    );
    // A staged Delete needs only the name (and the tier).
    let del = json!({"apiVersion": "projectcalico.org/v3", "kind": "StagedGlobalNetworkPolicy",
        "metadata": {"name": "gone"}, "spec": {"stagedAction": "Delete", "tier": "default"}});
    assert_eq!(refused(del), "");
}

#[test]
fn calico_docs_samples_are_accepted() {
    let text = include_str!("../../../tests/fixtures/calico-3.31/docs-examples.yaml");
    let docs = decode_documents(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(docs.len(), 9);
    for r in docs {
        let r = r.unwrap_or_else(|e| panic!("{e}"));
        r.validate().unwrap_or_else(|e| panic!("{e}"));
    }
    // The KubeControllersConfiguration sample as printed misspells
    // `loadBalancer`; Calico's calicoctl (strict decoding) refuses it too.
    let e = refused(
        json!({"apiVersion": "projectcalico.org/v3", "kind": "KubeControllersConfiguration",
        "metadata": {"name": "default"},
        "spec": {"controllers": {"loadbalancer": {"assignIPs": "AllServices"}}}}),
    );
    assert!(
        e.contains("spec.controllers.loadbalancer: unknown field"),
        "{e}"
    );
}

/// `decode_json` (straight into the type) gives what `decode_value` gives
/// for the same text: every field of every kind, and the same error for
/// each way of being wrong (unknown field, wrong type, other apiVersion,
/// unknown or missing kind, not a mapping, not JSON).
#[test]
fn decoding_text_equals_decoding_a_value() {
    let docs = serde_saphyr_docs();
    assert!(docs.len() > 15);
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for d in &docs {
        cases.push(serde_json::to_vec(d).unwrap());
        cases.push(serde_json::to_vec(&with(d, "/spec/noSuchField", Value::Bool(true))).unwrap());
        cases.push(serde_json::to_vec(&with(d, "/metadata/name", Value::from(7))).unwrap());
        cases.push(
            serde_json::to_vec(&with(d, "/apiVersion", Value::from("projectcalico.org/v2")))
                .unwrap(),
        );
        cases.push(serde_json::to_vec(&with(d, "/kind", Value::from("NoSuchKind"))).unwrap());
        cases.push(serde_json::to_vec(&with(d, "/spec", Value::from("text"))).unwrap());
        let mut no_kind = d.clone();
        if let Value::Object(m) = &mut no_kind {
            m.remove("kind");
        }
        cases.push(serde_json::to_vec(&no_kind).unwrap());
    }
    cases.push(b"[1, 2]".to_vec());
    cases.push(b"{\"apiVersion\": ".to_vec());
    cases.push(b"null".to_vec());
    let mut decoded = 0;
    for bytes in &cases {
        let by_value = serde_json::from_slice::<Value>(bytes)
            .map_err(|e| e.to_string())
            .and_then(decode_value);
        let by_text = calico_api::decode_json(bytes);
        assert_eq!(by_text, by_value, "{}", String::from_utf8_lossy(bytes));
        decoded += usize::from(by_text.is_ok());
    }
    assert!(decoded >= docs.len(), "the fixture's documents decode");
}
