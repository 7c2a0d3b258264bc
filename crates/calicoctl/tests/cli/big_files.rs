//! calicoctl and big files (issue 13 point 2): thousands of documents, a
//! `List` as `get -o yaml` prints it, a bad document among thousands
//! (nothing written), and the limits that remain, named in plain words.
//! Each runs on the local store and on a real etcd.

use super::{Ds, etcd, local};

/// Workload endpoint `i`, as the CNI plugin writes them (namespace `ns{i % 10}`).
fn wep(i: usize) -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: node--1-k8s-pod{i}-eth0
  namespace: ns{ns}
  labels:
    app: web
    projectcalico.org/namespace: ns{ns}
    projectcalico.org/orchestrator: k8s
spec:
  orchestrator: k8s
  node: node-1
  containerID: c{i:x}
  pod: pod{i}
  endpoint: eth0
  ipNetworks:
  - 10.{a}.{b}.{c}/32
  profiles:
  - kns.ns{ns}
  interfaceName: cali{i:011x}
  mac: ee:ee:ee:ee:ee:ee
",
        ns = i % 10,
        a = 64 + i / 65536,
        b = (i / 256) % 256,
        c = i % 256,
    )
}

fn weps(n: usize) -> String {
    (0..n).map(wep).collect::<Vec<_>>().join("---\n")
}

fn global_network_set(name: &str, nets: usize) -> String {
    let nets: String = (0..nets)
        .map(|i| format!("  - 10.{}.{}.{}/32\n", i / 65536, (i / 256) % 256, i % 256))
        .collect();
    format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  name: {name}\n  labels: {{feed: blocklist}}\nspec:\n  nets:\n{nets}"
    )
}

/// `calicoctl get wep -A`'s rows (header excluded).
fn wep_rows(ds: &Ds) -> usize {
    ds.ok(&["get", "workloadendpoints", "--all-namespaces"])
        .lines()
        .skip(1)
        .count()
}

const N: usize = 9000;

fn thousands_of_documents(ds: Ds) {
    // serde-saphyr's default budget refused the 1,025th document.
    let f = ds.file("weps.yaml", &weps(N));
    assert_eq!(
        ds.ok(&["apply", "-f", &f]).trim(),
        format!("Successfully applied {N} 'WorkloadEndpoint' resource(s)")
    );
    assert_eq!(wep_rows(&ds), N);
    let before = ds.ok(&[
        "get",
        "wep",
        "node--1-k8s-pod8999-eth0",
        "-n",
        "ns9",
        "-o",
        "yaml",
    ]);
    // Applied again: updates, each keeping its uid and creation time.
    assert!(
        ds.ok(&["apply", "-f", &f])
            .contains(&format!("applied {N} "))
    );
    let after = ds.ok(&[
        "get",
        "wep",
        "node--1-k8s-pod8999-eth0",
        "-n",
        "ns9",
        "-o",
        "yaml",
    ]);
    let field = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .map(str::to_string)
            .unwrap_or_default()
    };
    assert_eq!(field(&before, "uid:"), field(&after, "uid:"));
    assert!(!field(&after, "uid:").is_empty(), "{after}");
    assert_eq!(
        field(&before, "creationTimestamp:"),
        field(&after, "creationTimestamp:")
    );
    assert_ne!(
        field(&before, "resourceVersion:"),
        field(&after, "resourceVersion:")
    );
    // The local store writes the whole file in one transaction (one
    // revision); etcd in transactions of 128.
    let first = ds.ok(&[
        "get",
        "wep",
        "node--1-k8s-pod0-eth0",
        "-n",
        "ns0",
        "-o",
        "yaml",
    ]);
    let one_revision = field(&first, "resourceVersion:") == field(&after, "resourceVersion:");
    assert_eq!(
        one_revision,
        ds.env.iter().all(|(k, _)| k != "DATASTORE_TYPE")
    );
    // `get -o yaml` prints a WorkloadEndpointList (items before kind); it
    // applies back whole, as YAML and as JSON, into an empty store too.
    let list = ds.ok(&["get", "wep", "-A", "-o", "yaml"]);
    assert!(list.contains("kind: WorkloadEndpointList"));
    let f = ds.file("list.yaml", &list);
    assert!(
        ds.ok(&["replace", "-f", &f])
            .contains(&format!("replaced {N} ")),
        "the resourceVersions of the list are current"
    );
    let json = ds.ok(&["get", "wep", "-A", "-o", "json"]);
    let fj = ds.file("list.json", &json);
    ds.ok(&["delete", "-f", &fj]);
    assert_eq!(wep_rows(&ds), 0);
    let stripped: String = list
        .lines()
        .filter(|l| !l.trim_start().starts_with("resourceVersion:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let f = ds.file("list2.yaml", &stripped);
    assert!(
        ds.ok(&["create", "-f", &f])
            .contains(&format!("created {N} "))
    );
    assert_eq!(wep_rows(&ds), N);
    // A GlobalNetworkSet with 50,000 nets (about 0.8 MiB) is one resource.
    let f = ds.file("gns.yaml", &global_network_set("feed", 50_000));
    ds.ok(&["apply", "-f", &f]);
    let got = ds.ok(&["get", "globalnetworkset", "feed", "-o", "json"]);
    assert_eq!(got.matches("/32\"").count(), 50_000);
}

fn one_bad_document_changes_nothing(ds: Ds) {
    // Invalid (an interface name too long) at document 4,500 of 9,000.
    let mut docs: Vec<String> = (0..N).map(wep).collect();
    docs[4499] = docs[4499].replace("interfaceName: cali", "interfaceName: calicalicali");
    let f = ds.file("bad.yaml", &docs.join("---\n"));
    let e = ds.fails(&["apply", "-f", &f]);
    assert!(
        e.contains("bad.yaml: document 4500: WorkloadEndpoint(ns9/node--1-k8s-pod4499-eth0)")
            && e.contains("interfaceName")
            && e.contains("nothing was changed"),
        "{e}"
    );
    assert_eq!(wep_rows(&ds), 0);
    // Undecodable (an unknown field) in the middle.
    let mut docs: Vec<String> = (0..N).map(wep).collect();
    docs[6000] = docs[6000].replace("  endpoint: eth0", "  endpoint: eth0\n  colour: red");
    let f = ds.file("bad2.yaml", &docs.join("---\n"));
    let e = ds.fails(&["apply", "-f", &f]);
    assert!(
        e.contains("document 6001") && e.contains("unknown field `colour`"),
        "{e}"
    );
    assert_eq!(wep_rows(&ds), 0);
    // Refused by the store check (it exists) at document 8,000 of a create.
    let f = ds.file("one.yaml", &wep(7999));
    ds.ok(&["create", "-f", &f]);
    let f = ds.file("all.yaml", &weps(N));
    let e = ds.fails(&["create", "-f", &f]);
    assert!(
        e.contains("all.yaml: document 8000: resource already exists")
            && e.contains("nothing was changed"),
        "{e}"
    );
    assert_eq!(wep_rows(&ds), 1);
    // The same resource twice in a create.
    let f = ds.file("twice.yaml", &format!("{}---\n{}", wep(1), wep(1)));
    let e = ds.fails(&["create", "-f", &f]);
    assert!(
        e.contains("document 2: WorkloadEndpoint(ns1/node--1-k8s-pod1-eth0) is also in"),
        "{e}"
    );
    assert_eq!(wep_rows(&ds), 1);
    // Thousands of errors: the first 50 listed, the rest counted.
    let docs: Vec<String> = (0..3000)
        .map(|i| wep(i).replace("interfaceName: cali", "interfaceName: calicalicali"))
        .collect();
    let f = ds.file("all-bad.yaml", &docs.join("---\n"));
    let e = ds.fails(&["apply", "-f", &f]);
    assert_eq!(e.matches("interfaceName").count(), 50, "{e}");
    assert!(e.contains("... and 2950 more errors (3000 in all)"), "{e}");
}

fn limits_in_plain_words(ds: Ds) {
    // 80,000 nets are about 1.4 MiB stored: more than one resource may be.
    let f = ds.file(
        "huge.yaml",
        &format!("{}---\n{}", wep(1), global_network_set("huge", 80_000)),
    );
    let e = ds.fails(&["apply", "-f", &f]);
    assert!(
        e.contains("huge.yaml: document 2: GlobalNetworkSet(huge) is 1.")
            && e.contains("MiB as stored, larger than the 1 MiB one resource may be"),
        "{e}"
    );
    assert!(!e.contains('{'), "no Debug dump: {e}");
    // An alias bomb: each anchor repeats the one before ten times.
    let mut bomb = String::from(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {name: bomb}\nx0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n",
    );
    for i in 1..20 {
        let p = i - 1;
        bomb += &format!(
            "x{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        );
    }
    let f = ds.file("bomb.yaml", &format!("{}---\n{bomb}", wep(1)));
    let e = ds.fails(&["apply", "-f", &f]);
    assert!(
        e.contains("bomb.yaml: document 2: YAML aliases (*name) expand beyond the safe limits"),
        "{e}"
    );
    assert!(!e.contains('{'), "no Debug dump: {e}");
    // Nesting far deeper than any resource.
    let deep = format!(
        "{}---\nkind: {}1{}\n",
        wep(1),
        "[".repeat(100),
        "]".repeat(100)
    );
    let f = ds.file("deep.yaml", &deep);
    let e = ds.fails(&["apply", "-f", &f]);
    assert!(
        e.contains("deep.yaml: document 2: mappings and lists nested deeper than 64 levels"),
        "{e}"
    );
    let deep = format!("[{{\"kind\": {}1{}}}]", "[".repeat(200), "]".repeat(200));
    let f = ds.file("deep.json", &deep);
    let e = ds.fails(&["apply", "-f", &f]);
    assert!(
        e.contains("deep.json: document 1: mappings and lists nested deeper than 128 levels"),
        "{e}"
    );
    assert_eq!(wep_rows(&ds), 0);
    assert_eq!(ds.ok(&["get", "globalnetworksets"]).lines().count(), 1);
}

#[test]
fn local_thousands_of_documents() {
    thousands_of_documents(local());
}

#[test]
fn etcd_thousands_of_documents() {
    thousands_of_documents(etcd());
}

#[test]
fn local_one_bad_document_changes_nothing() {
    one_bad_document_changes_nothing(local());
}

#[test]
fn etcd_one_bad_document_changes_nothing() {
    one_bad_document_changes_nothing(etcd());
}

#[test]
fn local_limits_in_plain_words() {
    limits_in_plain_words(local());
}

#[test]
fn etcd_limits_in_plain_words() {
    limits_in_plain_words(etcd());
}
